package openimages

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestReadClasses(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"with header":    "LabelName,DisplayName\n/m/01yrx,Cat\n/m/015qff,Traffic  light\n",
		"without header": "/m/01yrx,Cat\n/m/015qff,Traffic  light\n",
		"bom and crlf":   "\ufeffLabelName,DisplayName\r\n/m/01yrx,Cat\r\n/m/015qff,\"Traffic  light\"\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			classes, err := ReadClasses(strings.NewReader(in))
			require.NoError(t, err)
			require.Len(t, classes, 2)
			require.Equal(t, "/m/01yrx", classes[0].MID)
			require.Equal(t, "cat", classes[0].Name())
			require.Equal(t, "traffic light", classes[1].Name())
		})
	}
	_, err := ReadClasses(strings.NewReader("/m/01yrx,Cat,extra\n"))
	require.Error(t, err)
	_, err = ReadClasses(strings.NewReader("/m/01yrx,\n"))
	require.ErrorContains(t, err, "line 1")
}

func TestReadImageLabels(t *testing.T) {
	t.Parallel()
	in := "ImageID,Source,LabelName,Confidence\n" +
		"000a1249af2bc5f0,verification,/m/01yrx,1\n" +
		"000a1249af2bc5f0,verification,/m/0bt9lr,0\n" + // verified absent
		"000a1249af2bc5f0,crowdsource-verification,/m/04rky,1\n" +
		"0b1c,human,/m/0bt9lr,1\n"
	got, err := ReadImageLabels(strings.NewReader(in))
	require.NoError(t, err)
	require.Equal(t, map[string][]string{
		"000a1249af2bc5f0": {"/m/01yrx", "/m/04rky"},
		"0b1c":             {"/m/0bt9lr"},
	}, got)

	_, err = ReadImageLabels(strings.NewReader("ImageID,Source,LabelName\n"))
	require.ErrorContains(t, err, "Confidence")
	_, err = ReadImageLabels(strings.NewReader("ImageID,Source,LabelName,Confidence\nx,y,z,high\n"))
	require.ErrorContains(t, err, "line 2")
	// Found by the fuzzers: ParseFloat reads NaN and Inf, empty IDs made
	// labels for an image named "", and quoted fields may hold line breaks.
	for _, row := range []string{"x,y,z,NaN", "x,y,z,+Inf", ",y,z,1", "x,y, ,1", "\"x\r\ny\",y,z,1"} {
		_, err = ReadImageLabels(strings.NewReader("ImageID,Source,LabelName,Confidence\n" + row + "\n"))
		require.ErrorContains(t, err, "line 2", row)
	}
}
