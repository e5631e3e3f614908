package openimages

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzReadClasses: whatever the bytes, ReadClasses does not panic, every
// class it returns has a MID and a display name without surrounding space,
// and the classes written back as CSV (under a header) read back the same.
func FuzzReadClasses(f *testing.F) {
	f.Add([]byte("LabelName,DisplayName\n/m/01yrx,Cat\n/m/015qff,Traffic  light\n"))
	f.Add([]byte("/m/01yrx,Cat\n/m/015qff,Traffic  light\n"))
	f.Add([]byte("\ufeffLabelName,DisplayName\r\n/m/01yrx,Cat\r\n/m/015qff,\"Traffic  light\"\r\n"))
	f.Add([]byte("/m/0,\"a \"\"quoted\"\", name\nwith a newline\"\n"))
	f.Add([]byte("/m/01yrx,Cat,extra\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		classes, err := ReadClasses(bytes.NewReader(data))
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		var buf bytes.Buffer
		cw := csv.NewWriter(&buf)
		require.NoError(t, cw.Write([]string{"LabelName", "DisplayName"}))
		for _, c := range classes {
			require.NotEmpty(t, c.MID)
			require.NotEmpty(t, c.DisplayName)
			require.Equal(t, strings.TrimSpace(c.MID), c.MID)
			require.Equal(t, strings.TrimSpace(c.DisplayName), c.DisplayName)
			require.NoError(t, cw.Write([]string{c.MID, c.DisplayName}))
		}
		cw.Flush()
		back, err := ReadClasses(&buf)
		require.NoError(t, err)
		require.Equal(t, classes, back)
	})
}

// FuzzReadImageLabels: whatever the bytes, ReadImageLabels does not panic,
// returns no empty image ID or MID, and what it returns written back as CSV
// reads back the same.
func FuzzReadImageLabels(f *testing.F) {
	f.Add([]byte("ImageID,Source,LabelName,Confidence\n" +
		"000a1249af2bc5f0,verification,/m/01yrx,1\n" +
		"000a1249af2bc5f0,verification,/m/0bt9lr,0\n" +
		"000a1249af2bc5f0,crowdsource-verification,/m/04rky,1\n" +
		"0b1c,human,/m/0bt9lr,1\n"))
	f.Add([]byte("\ufeffLabelName,Confidence,ImageID\r\n/m/01yrx,0.5,abc\r\n"))
	f.Add([]byte("ImageID,Source,LabelName,Confidence\nx,y,z,high\n"))
	f.Add([]byte("ImageID,Source,LabelName,Confidence\nx,y,z,NaN\n"))
	f.Add([]byte("ImageID,Source,LabelName,Confidence\n,y,z,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		labels, err := ReadImageLabels(bytes.NewReader(data))
		if err != nil {
			require.NotEmpty(t, err.Error())
			return
		}
		var buf bytes.Buffer
		cw := csv.NewWriter(&buf)
		require.NoError(t, cw.Write([]string{"ImageID", "Source", "LabelName", "Confidence"}))
		for id, mids := range labels {
			require.NotEmpty(t, id)
			require.Equal(t, strings.TrimSpace(id), id)
			require.NotEmpty(t, mids)
			for _, mid := range mids {
				require.NotEmpty(t, mid)
				require.Equal(t, strings.TrimSpace(mid), mid)
				require.NoError(t, cw.Write([]string{id, "fuzz", mid, "1"}))
			}
		}
		cw.Flush()
		back, err := ReadImageLabels(&buf)
		require.NoError(t, err)
		require.Equal(t, labels, back)
	})
}
