package inference

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/oip"
)

// TestMetadataLabels reads the labels parameter as the ONNX worker writes
// it, and refuses one that is not a JSON array of strings.
func TestMetadataLabels(t *testing.T) {
	labels, ok, err := MetadataLabels(&oip.ModelMetadata{Parameters: oip.Parameters{"layout": "yolo-seg", "labels": `["person","traffic light"]`}})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []string{"person", "traffic light"}, labels)

	for _, meta := range []*oip.ModelMetadata{nil, {}, {Parameters: oip.Parameters{"layout": "maskrcnn"}}, {Parameters: oip.Parameters{"labels": `[]`}}} {
		labels, ok, err := MetadataLabels(meta)
		require.NoError(t, err)
		require.False(t, ok, "%+v", meta)
		require.Empty(t, labels)
	}
	for _, v := range []any{`person,car`, `{"0": "person"}`, `[1, 2]`, []any{"person"}} {
		_, ok, err := MetadataLabels(&oip.ModelMetadata{Parameters: oip.Parameters{"labels": v}})
		require.Error(t, err, "%v", v)
		require.Contains(t, err.Error(), `"labels"`)
		require.False(t, ok)
	}
}
