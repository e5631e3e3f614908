package importer

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckCOCO(t *testing.T) {
	for _, bad := range []string{"", "{", `{"images": [`, "[1, 2]", "{}", `{"images": []}`, `{"images": [], "annotations": [] `, `{"images": {"a": [1}, "annotations": []}`} {
		require.Error(t, checkCOCO(strings.NewReader(bad)), "%q", bad)
	}
	require.NoError(t, checkCOCO(strings.NewReader(`{"info": {"v": [1, {"x": null}]}, "images": [], "annotations": [], "categories": []}`)))
}
