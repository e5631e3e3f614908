package onnxworker

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/prompt"
)

// tritonTensor is one input or output of a Triton config.pbtxt.
type tritonTensor struct {
	name     string
	datatype string // oip's: TYPE_FP32 → FP32
	dims     []int64
}

var (
	pbComment = regexp.MustCompile(`#[^\n]*`)
	pbBlock   = regexp.MustCompile(`(?s)\b(input|output)\s*\[(.*?)\n\]`)
	pbEntry   = regexp.MustCompile(`(?s)\{(.*?)\}`)
	pbName    = regexp.MustCompile(`name:\s*"([^"]+)"`)
	pbType    = regexp.MustCompile(`data_type:\s*TYPE_(\w+)`)
	pbDims    = regexp.MustCompile(`dims:\s*\[([^\]]*)\]`)
	pbField   = regexp.MustCompile(`(?m)^(\w+):\s*"?([^"\n]*)"?\s*$`)
)

// readTritonConfig reads the parts of a config.pbtxt the hub's docs rely
// on: its top-level fields and its inputs and outputs, each entry with a
// name, a data type and dims, or the test fails.
func readTritonConfig(t *testing.T, path string) (fields map[string]string, ins, outs []tritonTensor) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	text := pbComment.ReplaceAllString(string(b), "")
	fields = map[string]string{}
	for _, m := range pbField.FindAllStringSubmatch(text, -1) {
		fields[m[1]] = m[2]
	}
	for _, blk := range pbBlock.FindAllStringSubmatch(text, -1) {
		for _, e := range pbEntry.FindAllStringSubmatch(blk[2], -1) {
			n, ty, d := pbName.FindStringSubmatch(e[1]), pbType.FindStringSubmatch(e[1]), pbDims.FindStringSubmatch(e[1])
			require.True(t, n != nil && ty != nil && d != nil, "%s: an %s without name, data_type or dims: %s", path, blk[1], e[1])
			tt := tritonTensor{name: n[1], datatype: ty[1]}
			for _, f := range strings.Split(d[1], ",") {
				v, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
				require.NoError(t, err, "%s: dims of %s", path, n[1])
				tt.dims = append(tt.dims, v)
			}
			if blk[1] == "input" {
				ins = append(ins, tt)
			} else {
				outs = append(outs, tt)
			}
		}
	}
	return fields, ins, outs
}

func tensorNames(ts []tritonTensor) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.name)
	}
	slices.Sort(out)
	return out
}

// TestSAMTritonConfigs: docs/triton's SAM encoder and decoder configs name
// the tensors (types, shapes) that the SAM worker requires of the two
// files and feeds them (the constants of sam.go, the checks of NewSAM),
// and none of the prompt protocol's, which the hub sends: a request of the
// hub is not one Triton would take for these models. With ONNX Runtime
// present, the test files' own tensors match the configs too.
func TestSAMTritonConfigs(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "triton")
	encFields, encIns, encOuts := readTritonConfig(t, filepath.Join(dir, "sam_encoder", "config.pbtxt"))
	decFields, decIns, decOuts := readTritonConfig(t, filepath.Join(dir, "sam_decoder", "config.pbtxt"))
	for name, f := range map[string]map[string]string{"sam_encoder": encFields, "sam_decoder": decFields} {
		require.Equal(t, name, f["name"], "the directory names the model")
		require.Equal(t, "onnxruntime", f["backend"])
		require.Equal(t, "0", f["max_batch_size"], "whole shapes, no batch dimension added by Triton")
	}

	emb := []int64{1, 256, samSide / 16, samSide / 16}
	require.Equal(t, []tritonTensor{{"image", "FP32", []int64{1, 3, samSide, samSide}}}, encIns)
	require.Equal(t, []tritonTensor{{samEmbeddings, "FP32", emb}}, encOuts)

	rank := map[string]int{samEmbeddings: 4, samPointCoords: 3, samPointLabels: 2, samMaskInput: 4, samHasMaskInput: 1, samOrigImSize: 1}
	wantIns := []string{samEmbeddings, samPointCoords, samPointLabels, samMaskInput, samHasMaskInput, samOrigImSize}
	slices.Sort(wantIns)
	require.Equal(t, wantIns, tensorNames(decIns))
	for _, in := range decIns {
		require.Equal(t, "FP32", in.datatype, in.name)
		require.Len(t, in.dims, rank[in.name], in.name)
		switch in.name {
		case samEmbeddings:
			require.Equal(t, emb, in.dims, "the decoder takes what the encoder returns")
		case samMaskInput:
			require.Equal(t, []int64{1, 1, samMaskSide, samMaskSide}, in.dims)
		}
	}
	names := tensorNames(decOuts)
	require.Contains(t, names, samMasks)
	require.Contains(t, names, samIoU)

	for _, p := range []string{prompt.Image, prompt.Embedding, prompt.Points, prompt.PointLabels, prompt.Box, prompt.MaskInput, prompt.Masks, prompt.Scores} {
		require.NotContains(t, append(tensorNames(decIns), tensorNames(encIns)...), p)
	}

	testdata := filepath.Join("..", "..", "testdata", "onnx")
	for file, want := range map[string][]tritonTensor{"sam-encoder.onnx": encIns, "sam-decoder.onnx": decIns} {
		m, err := Open(filepath.Join(testdata, file), Options{Threads: 1})
		if errors.Is(err, ErrNoRuntime) {
			t.Log("no ONNX Runtime: the test files' tensors not compared")
			return
		}
		require.NoError(t, err)
		got := map[string]oip.TensorMetadata{}
		for _, in := range m.Inputs() {
			got[in.Name] = in
		}
		require.NoError(t, m.Close())
		require.Len(t, got, len(want), file)
		for _, w := range want {
			g, ok := got[w.name]
			require.True(t, ok, "%s has no input %s", file, w.name)
			require.Equal(t, w.datatype, string(g.Datatype), w.name)
			require.Len(t, g.Shape, len(w.dims), w.name)
		}
	}
}
