// Package onnxworker serves an ONNX model file, run on the CPU by ONNX
// Runtime, over the Open Inference Protocol (KServe V2 REST, JSON and
// Triton's binary tensor extension), the way Triton's onnxruntime backend
// does: with the model's own tensors. Model metadata lists the file's real
// inputs and outputs (names, datatypes, shapes with -1 for a dynamic
// dimension) and an inference takes the raw input tensors and returns the raw
// outputs. The hub does the pre- and post-processing of the model's layout
// (PROTOCOL.md, "Stock layouts"), exactly as it does for a Triton server, so
// the file on a laptop and on a GPU server are the same.
//
// `imagehub worker --onnx model.onnx --layout yolo-seg` starts it; package
// worker is the pure-Go segmenter that needs no library. The one exception
// to "the model's own tensors" is LayoutSAM (sam.go): a Segment Anything
// encoder and decoder pair served as two models of the hub's prompt
// protocol, the worker doing SAM's pre-processing and prompt mapping.
//
// Routes (errors are {"error": "…"} with a 4xx or 5xx status):
//
//	GET  /v2/health/live, /v2/health/ready             200 while up
//	GET  /v2                                            server metadata (extensions: binary_tensor_data)
//	GET  /v2/models/{model}[/versions/{v}]              model metadata, with parameters (below)
//	GET  /v2/models/{model}[/versions/{v}]/ready        200 for the served model
//	POST /v2/models/{model}[/versions/{v}]/infer        one inference, JSON or binary body
//
// The model metadata's "parameters" carry what the hub needs to read the
// outputs, as strings (the way Triton's model config parameters are):
//
//	"layout": "yolo-seg" or "maskrcnn" ("sam" for SAMServer's two models)
//	"labels": a JSON array of the class names in output order, as a string,
//	          e.g. "[\"person\",\"car\"]"; absent when none are known
//
// The labels come from --labels (one per line) or, without it, from the
// Ultralytics metadata_props entry "names" of the ONNX file.
//
// Every input of the model must be sent, with the model's datatype and rank,
// each fixed dimension as declared and each dynamic one at least 1; anything
// else is answered 400 naming the input. A dynamic leading (batch) dimension
// takes a batch of any size. The outputs the request asks for (all by
// default) come back binary when asked ("binary_data": true on the output or
// "binary_data_output": true on the request), else as JSON.
//
// ONNX Runtime is a C library loaded at run time (dlopen) through
// github.com/yalue/onnxruntime_go, which needs cgo: a binary built with
// CGO_ENABLED=0 has this package's HTTP side but Open fails with
// ErrNoRuntime. The library is found by Library.
package onnxworker

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The layouts a served model may have (PROTOCOL.md, "Stock layouts").
const (
	LayoutYOLOSeg  = "yolo-seg"
	LayoutMaskRCNN = "maskrcnn"
)

// Layouts lists the layouts in the order usage messages give them.
var Layouts = []string{LayoutYOLOSeg, LayoutMaskRCNN, LayoutSAM}

// The keys of the model metadata's parameters.
const (
	ParamLayout = "layout"
	ParamLabels = "labels"
)

// RuntimeVersion is the ONNX Runtime release whose C API onnxruntime_go
// v1.27.0 is written against; scripts/onnxruntime.sh installs it.
const RuntimeVersion = "1.24.1"

// EnvLibrary names the environment variable that overrides the library's path.
const EnvLibrary = "ONNXRUNTIME_LIB"

// ErrNoRuntime is returned by Open in a binary built without cgo.
var ErrNoRuntime = errors.New("this imagehub was built without cgo (CGO_ENABLED=0), so it cannot load ONNX Runtime; build it with cgo to serve ONNX models")

// libraryName is the file name scripts/onnxruntime.sh installs under.
func libraryName() string {
	if runtime.GOOS == "darwin" {
		return "libonnxruntime.dylib"
	}
	return "libonnxruntime.so.1"
}

// Library returns the path of the ONNX Runtime shared library to load:
// $ONNXRUNTIME_LIB when set; else .bin/onnxruntime/<lib> (where `make
// onnxruntime` installs it) in the working directory or one above it (so a
// test inside the checkout finds the checkout's), or beside the executable or
// one folder above it (bin/imagehub finds ../.bin/onnxruntime); else the bare
// file name, left to the system's library search path.
func Library(getenv func(string) string) string {
	if p := getenv(EnvLibrary); p != "" {
		return p
	}
	rel := filepath.Join(".bin", "onnxruntime", libraryName())
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		starts = append(starts, dir, filepath.Dir(dir))
	}
	for i, dir := range starts {
		for {
			p := filepath.Join(dir, rel)
			if _, err := os.Stat(p); err == nil {
				return p
			}
			parent := filepath.Dir(dir)
			// Only the working directory is searched upwards.
			if i > 0 || parent == dir {
				break
			}
			dir = parent
		}
	}
	return libraryName()
}

// ReadLabels reads a labels file: one class name per line in output order,
// blank lines at the end ignored, a trailing \r dropped.
func ReadLabels(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("error reading the labels: %w", err)
	}
	var labels []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSuffix(sc.Text(), "\r")
		if !utf8.ValidString(l) || len(l) > 256 {
			return nil, fmt.Errorf("%s line %d: a label is at most 256 bytes of UTF-8", path, n)
		}
		labels = append(labels, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("error reading %s: %w", path, err)
	}
	for len(labels) > 0 && strings.TrimSpace(labels[len(labels)-1]) == "" {
		labels = labels[:len(labels)-1]
	}
	for i, l := range labels {
		if strings.TrimSpace(l) == "" {
			return nil, fmt.Errorf("%s line %d is blank; every class needs a name (torchvision's unused ids are usually N/A)", path, i+1)
		}
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("%s has no labels", path)
	}
	return labels, nil
}

// ParseUltralyticsNames reads the "names" metadata entry of an Ultralytics
// export: a Python dict literal from class index to name, such as
// {0: 'person', 1: "o'clock"}. It returns the names by index; the indices
// must be 0 to n-1.
func ParseUltralyticsNames(s string) ([]string, error) {
	p := pyParser{s: s}
	p.space()
	if !p.eat('{') {
		return nil, errors.New("names is not a {index: name} dict")
	}
	byIndex := map[int]string{}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		k, err := strconv.Atoi(p.s[start:p.i])
		if err != nil || k > 1<<20 {
			return nil, fmt.Errorf("names: expected a class index at byte %d", start)
		}
		p.space()
		if !p.eat(':') {
			return nil, fmt.Errorf("names: expected ':' at byte %d", p.i)
		}
		p.space()
		v, err := p.str()
		if err != nil {
			return nil, err
		}
		if _, dup := byIndex[k]; dup {
			return nil, fmt.Errorf("names: index %d appears twice", k)
		}
		byIndex[k] = v
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if !p.eat('}') {
			return nil, fmt.Errorf("names: expected ',' or '}' at byte %d", p.i)
		}
		break
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("names: unexpected text at byte %d", p.i)
	}
	names := make([]string, len(byIndex))
	for i := range names {
		v, ok := byIndex[i]
		if !ok {
			return nil, fmt.Errorf("names: index %d is missing; indices must be 0 to %d", i, len(names)-1)
		}
		names[i] = v
	}
	if len(names) == 0 {
		return nil, errors.New("names is empty")
	}
	return names, nil
}

// pyParser reads the few Python literals ParseUltralyticsNames needs.
type pyParser struct {
	s string
	i int
}

func (p *pyParser) space() {
	for p.i < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

func (p *pyParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a quoted Python string; the escapes repr() writes are \\, \',
// \", \n, \r, \t and \xNN, \uNNNN, \UNNNNNNNN.
func (p *pyParser) str() (string, error) {
	if p.i >= len(p.s) || (p.s[p.i] != '\'' && p.s[p.i] != '"') {
		return "", fmt.Errorf("names: expected a quoted name at byte %d", p.i)
	}
	q := p.s[p.i]
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return b.String(), nil
		case c == '\\' && p.i+1 < len(p.s):
			e := p.s[p.i+1]
			p.i += 2
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'x', 'u', 'U':
				n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
				if p.i+n > len(p.s) {
					return "", errors.New("names: a \\" + string(e) + " escape is cut short")
				}
				r, err := strconv.ParseUint(p.s[p.i:p.i+n], 16, 32)
				if err != nil {
					return "", fmt.Errorf("names: bad \\%c escape at byte %d", e, p.i)
				}
				b.WriteRune(rune(r))
				p.i += n
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", errors.New("names: a quoted name is not closed")
}

// labelsParam is the labels as the metadata's parameter holds them.
func labelsParam(labels []string) string {
	b, _ := json.Marshal(labels) // a []string always encodes
	return string(b)
}

// RunError is an inference that ONNX Runtime refused or failed, for inputs
// that had the declared datatypes and shapes (a dynamic dimension the graph
// cannot take, for example).
type RunError struct{ Err error }

func (e *RunError) Error() string { return "the model could not run on these inputs: " + e.Err.Error() }

func (e *RunError) Unwrap() error { return e.Err }

func getenv(key string) string { return os.Getenv(key) }

// CheckLabels refuses labels that cannot be the model's classes: for
// yolo-seg, whose output0 is [B, 4+nc+32, A], a count other than nc when
// that dimension is fixed. (A torchvision Mask R-CNN's labels are class
// numbers from 1, and the file does not say how many classes there are.)
func CheckLabels(m *Model, layout string, labels []string) error {
	if layout != LayoutYOLOSeg || labels == nil {
		return nil
	}
	for _, o := range m.Outputs() {
		if o.Name == "output0" && len(o.Shape) == 3 && o.Shape[1] > 36 {
			if nc := o.Shape[1] - 36; int64(len(labels)) != nc {
				return fmt.Errorf("the model's output0 %s has %d classes (4 box rows, %d class rows, 32 mask coefficients) but %d labels were given", shapeString(o.Shape), nc, nc, len(labels))
			}
		}
	}
	return nil
}
