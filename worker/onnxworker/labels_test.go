package onnxworker_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/worker/onnxworker"
)

func TestParseUltralyticsNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"{0: 'person', 1: 'bicycle', 2: 'car'}", []string{"person", "bicycle", "car"}},
		{`{1: "o'clock", 0: 'a\'b', 2: 'caf\xe9 \u00e9\\'}`, []string{"a'b", "o'clock", `café é\`}},
		{" {0:'x',} ", []string{"x"}},
	} {
		got, err := onnxworker.ParseUltralyticsNames(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
	for _, bad := range []string{"", "[]", "{}", "{0: 'a', 2: 'b'}", "{0: 'a', 0: 'b'}", "{0: 'a'", "{0: a}", "{'x': 'a'}", "{0: 'a'} x"} {
		_, err := onnxworker.ParseUltralyticsNames(bad)
		require.Error(t, err, bad)
	}
}

func TestReadLabels(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
		return p
	}
	got, err := onnxworker.ReadLabels(write("ok.txt", "__background__\r\nperson\nN/A\ntraffic light\n\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"__background__", "person", "N/A", "traffic light"}, got)
	_, err = onnxworker.ReadLabels(write("gap.txt", "a\n\nb\n"))
	require.ErrorContains(t, err, "line 2 is blank")
	_, err = onnxworker.ReadLabels(write("empty.txt", "\n"))
	require.ErrorContains(t, err, "has no labels")
	_, err = onnxworker.ReadLabels(filepath.Join(dir, "absent.txt"))
	require.ErrorContains(t, err, "error reading the labels")
}

func TestLibrary(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ONNXRUNTIME_LIB": "/opt/ort/libonnxruntime.so.1"}
	require.Equal(t, "/opt/ort/libonnxruntime.so.1", onnxworker.Library(func(k string) string { return env[k] }))
	// Without the variable, a test run inside the checkout finds the
	// checkout's .bin/onnxruntime/ (when `make onnxruntime` installed it)
	// or falls back on the bare name for the system's search path.
	p := onnxworker.Library(func(string) string { return "" })
	if filepath.IsAbs(p) {
		require.FileExists(t, p)
		require.Equal(t, filepath.Join(".bin", "onnxruntime"), filepath.Join(filepath.Base(filepath.Dir(filepath.Dir(p))), filepath.Base(filepath.Dir(p))))
	} else {
		require.Contains(t, p, "libonnxruntime")
	}
}
