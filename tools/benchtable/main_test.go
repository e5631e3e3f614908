package main

import (
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkIngestPipeline-2   	       3	 0 ns/op	        35.5 hub_img/s	        13.1 imagemagick_img/s
BenchmarkDispatchBatched-2   	       1	11221 ns/op	 533.3 ideal-img/s	 474.7 img/s
BenchmarkDispatch-2   	       1	11221 ns/op	 320 ideal-img/s	 310 img/s
BenchmarkRiverNoop-2   	       1	11221 ns/op	 2100 jobs/s
BenchmarkLoad-2 1 5 ns/op 0 5xx 1 uploads-lost
BenchmarkLayouts/yolo-seg-2 20 100 ns/op 16.5 yolo-seg-ms
BenchmarkSomethingNew-2 1 100 ns/op 7 widgets/s
BenchmarkEncode-2 2000 80000 ns/op 4096 B/op 1 allocs/op
BenchmarkRegionClassifier-2 1 0 ns/op 0.8 AP50 0.3 segmenter_AP50 0.9 AP50-disc 0.45 segmenter_AP50-disc 0.2 AP50-square 0.25 segmenter_AP50-square
PASS
`

func TestTable(t *testing.T) {
	figs, err := read(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	write(&out, figs)
	rows := map[string]string{}
	for line := range strings.Lines(out.String()) {
		f := strings.Fields(line)
		if len(f) >= 2 {
			rows[strings.TrimSpace(f[0]+" "+f[1]+" "+strings.Join(f[3:min(len(f), 5)], " "))] = line
		}
	}
	for key, want := range map[string]string{
		"IngestPipeline hub_img/s imagemagick_img/s 13.1":         "2.71×", // 35.5 / 13.1
		"DispatchBatched img/s ideal-img/s 533":                   "MISSED",
		"Dispatch img/s ideal-img/s 320":                          "met",
		"Dispatch img/s RiverNoop jobs/s":                         "0.148×",
		"Load 5xx limit 0":                                        "met",
		"Load uploads-lost limit 0":                               "MISSED",
		"Layouts/yolo-seg yolo-seg-ms limit 15":                   "MISSED",
		"SomethingNew widgets/s":                                  "7",
		"Encode sec/op limit 0.000147":                            "met",
		"RegionClassifier AP50 segmenter_AP50 0.3":                "met",
		"RegionClassifier AP50-disc segmenter_AP50-disc 0.45":     "2×",
		"RegionClassifier AP50-square segmenter_AP50-square 0.25": "MISSED",
	} {
		line, ok := rows[key]
		if !ok {
			t.Errorf("no row %q in\n%s", key, out.String())
			continue
		}
		if !strings.Contains(line, want) {
			t.Errorf("row %q = %q, want %q in it", key, line, want)
		}
	}
	if strings.Contains(out.String(), "IngestPipeline  ns/op") || strings.Contains(out.String(), "IngestPipeline    sec/op") {
		t.Errorf("a suppressed loop time is printed:\n%s", out.String())
	}
	if strings.Count(out.String(), "imagemagick_img/s") != 1 {
		t.Errorf("a peer gets a row of its own:\n%s", out.String())
	}
}
