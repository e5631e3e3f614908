// Command benchtable prints `make bench` as one table: every figure a
// benchmark reported, each beside its peer from the same run (ImageMagick
// or vipsthumbnail on the same files, tar for exports, a no-op River job
// for the queue, the ideal for dispatch) or the limit its issue sets, with
// the ratio and whether the goal holds.
//
//	go test -bench ... | go run ./benchtable
//
// It reads Go's benchmark format (golang.org/x/perf/benchfmt) on stdin.
// The pairs live in goals below: one place that says what each figure is
// measured against. A figure with no entry is still printed, alone.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"

	"golang.org/x/perf/benchfmt"
)

// goal is one figure of a benchmark measured against a peer figure (of the
// same benchmark, or of another with "Other:unit") or a fixed limit.
// Names are as benchfmt gives them: without "Benchmark" and the -N.
type goal struct {
	bench, unit string
	peer        string  // the peer's unit, or "Other:unit"; "" for a limit
	limit       float64 // used when peer is ""
	// want is the goal for the ratio figure/peer (figure/limit for a
	// limit): at least want when higher is better, at most when lower.
	want  float64
	lower bool // lower is better (times, memory)
}

var goals = []goal{
	{bench: "IngestPipeline", unit: "hub_img/s", peer: "imagemagick_img/s", want: 2},
	{bench: "IngestPhone", unit: "hub_photos/s", peer: "vips_photos/s", want: 1},
	{bench: "Layouts", unit: "yolo-seg-ms", limit: 15, want: 1, lower: true},
	{bench: "Layouts", unit: "maskrcnn-ms", limit: 15, want: 1, lower: true},
	{bench: "NearDuplicateLookup", unit: "ms/lookup", limit: 5, want: 1, lower: true},
	{bench: "NearDuplicateQuality", unit: "precision", limit: 0.95, want: 1},
	{bench: "NearDuplicateQuality", unit: "recall", limit: 0.95, want: 1},
	{bench: "NearDuplicateQuality", unit: "crop-recall", limit: 0.95, want: 1},
	{bench: "NearDuplicateQuality", unit: "ms/lookup", limit: 5, want: 1, lower: true},
	{bench: "Dispatch", unit: "img/s", peer: "ideal-img/s", want: 0.95},
	{bench: "Dispatch", unit: "img/s", peer: "RiverNoop:jobs/s"},
	{bench: "DispatchBatched", unit: "img/s", peer: "ideal-img/s", want: 0.95},
	// One request at a time per worker: what the hand-over costs (no goal).
	{bench: "DispatchBatchedOneRequest", unit: "img/s", peer: "ideal-img/s"},
	{bench: "ReviewBrushFrame", unit: "p95-ms/frame", limit: 16, want: 1, lower: true},
	{bench: "ReviewClickToMask", unit: "p95-ms/click", limit: 100, want: 1, lower: true},
	{bench: "ReviewClickToMask", unit: "first-ms", peer: "p50-ms/click", want: 1.2, lower: true},
	{bench: "ReviewClickToMask", unit: "next-first-ms", peer: "p50-ms/click", want: 1.2, lower: true},
	{bench: "DatasetPublish", unit: "s/publish-1M", limit: 30, want: 1, lower: true},
	{bench: "LabelsCSVImport", unit: "s/import", peer: "limit-s", want: 1, lower: true},
	{bench: "ClassesImport", unit: "s/import", peer: "limit-s", want: 1, lower: true},
	{bench: "DatasetExport", unit: "MB/s", peer: "tar-MB/s", want: 0.8},
	{bench: "DatasetDownload", unit: "MB-peak-RSS-growth", limit: 100, want: 1, lower: true},
	// Issue 12: every insights page and query under 200 ms at a million
	// images. The ms-fullcount-* figures are the counts the summaries
	// replaced, printed for scale without a goal.
	{bench: "Insights", unit: "ms-page-insights", limit: 200, want: 1, lower: true},
	{bench: "Insights", unit: "ms-api-classes", limit: 200, want: 1, lower: true},
	{bench: "Insights", unit: "ms-page-models", limit: 200, want: 1, lower: true},
	{bench: "Insights", unit: "ms-page-models-ab", limit: 200, want: 1, lower: true},
	{bench: "Insights", unit: "ms-api-evaluations", limit: 200, want: 1, lower: true},
	{bench: "Insights", unit: "ms-page-review-stats", limit: 200, want: 1, lower: true},
	{bench: "Insights", unit: "ms-csv-review-stats", limit: 200, want: 1, lower: true},
	{bench: "Insights", unit: "ms-api-stats-models", limit: 200, want: 1, lower: true},
	{bench: "Load", unit: "5xx", limit: 0, lower: true},
	{bench: "Load", unit: "uploads-lost", limit: 0, lower: true},
	{bench: "Load", unit: "reviews-lost", limit: 0, lower: true},
	{bench: "InteractivePrompt", unit: "ms/prompt", limit: 50, want: 1, lower: true},
	{bench: "ReviewSegment", unit: "first-ms", peer: "p50-ms", want: 1.2, lower: true},
	{bench: "RegionClassifier", unit: "AP50", peer: "segmenter_AP50", want: 1},
	// Per class of trainertest.Labels (the generated shapes it trains on).
	{bench: "RegionClassifier", unit: "AP50-disc", peer: "segmenter_AP50-disc", want: 1},
	{bench: "RegionClassifier", unit: "AP50-square", peer: "segmenter_AP50-square", want: 1},
	// The same recipe as a premium user runs it: the hub's export, the
	// built-in trainer over the trainer protocol, the hub's evaluation.
	{bench: "TrainingThroughHub", unit: "AP50", peer: "segmenter_AP50", want: 1},
	{bench: "TrainingThroughHub", unit: "AP50-disc", peer: "segmenter_AP50-disc", want: 1},
	{bench: "TrainingThroughHub", unit: "AP50-square", peer: "segmenter_AP50-square", want: 1},
	// Half of pycocotools' time per mask as the issue measured it here
	// (294 µs to encode, 397 µs to decode): pycocotools is not installable
	// on these machines, so its figures are limits, not a peer.
	{bench: "Encode", unit: "sec/op", limit: 0.5 * 294e-6, want: 1, lower: true},
	{bench: "Decode", unit: "sec/op", limit: 0.5 * 397e-6, want: 1, lower: true},
	{bench: "DecodeInto", unit: "sec/op", limit: 0.5 * 397e-6, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-review-next-32", limit: 20, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-review-submit-32", limit: 20, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-review-next-1", limit: 20, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-review-submit-1", limit: 20, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-review-next-32-paced", limit: 20, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-review-submit-32-paced", limit: 20, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-label", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-campaign", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-uploader", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-uploader-label", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-cursor-5-pages", limit: 250, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-uploader-cursor-5-pages", limit: 250, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-page-uploads", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-moderation", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-page-moderation", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-stats-models", limit: 200, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-status-uploaded", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-status-processing", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-status-awaiting_inference", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-status-awaiting_review", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-status-reviewed", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-status-flagged", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-status-rejected", limit: 50, want: 1, lower: true},
	{bench: "ListsAtMillion", unit: "ms-p99-images-status-failed", limit: 50, want: 1, lower: true},
}

// figure is one reported value.
type figure struct {
	bench, unit string
	value       float64
}

func main() {
	figs, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	write(os.Stdout, figs)
}

// gomaxprocs is the -N suffix Go adds to benchmark names.
var gomaxprocs = regexp.MustCompile(`-\d+$`)

// read collects the figures in input order; a benchmark run more than once
// keeps its last value of each unit.
func read(r io.Reader) ([]figure, error) {
	var figs []figure
	at := map[[2]string]int{}
	br := benchfmt.NewReader(bufio.NewReader(r), "stdin")
	for br.Scan() {
		res, ok := br.Result().(*benchfmt.Result)
		if !ok {
			continue // a syntax error or a unit line: not a figure
		}
		name := gomaxprocs.ReplaceAllString(string(res.Name.Full()), "")
		for _, v := range res.Values {
			if (v.Unit == "sec/op" || v.Unit == "ns/op") && v.Value == 0 {
				continue // suppressed by a fixed-work benchmark (ReportMetric(0, "ns/op"))
			}
			k := [2]string{name, v.Unit}
			if i, seen := at[k]; seen {
				figs[i].value = v.Value
				continue
			}
			at[k] = len(figs)
			figs = append(figs, figure{name, v.Unit, v.Value})
		}
	}
	return figs, br.Err()
}

func write(w io.Writer, figs []figure) {
	byKey := map[[2]string]float64{}
	for _, f := range figs {
		byKey[[2]string{f.bench, f.unit}] = f.value
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tfigure\tvalue\tbeside\tvalue\tratio\tgoal\t\t")
	// A peer shows beside its figure, not again on a row of its own.
	printed := map[[2]string]bool{}
	for _, f := range figs {
		for _, g := range goals {
			if g.bench == baseName(f.bench) && g.unit == f.unit && g.peer != "" && !strings.Contains(g.peer, ":") {
				printed[[2]string{f.bench, g.peer}] = true
			}
		}
	}
	for _, f := range figs {
		k := [2]string{f.bench, f.unit}
		if printed[k] {
			continue
		}
		printed[k] = true
		var rows int
		for _, g := range goals {
			if g.bench != baseName(f.bench) || g.unit != f.unit {
				continue
			}
			rows++
			beside, against, ok := g.against(f.bench, byKey)
			if !ok {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t(not run)\t\t\t\t\n", f.bench, f.unit, num(f.value), beside)
				continue
			}
			ratio, goalText, verdict := g.judge(f.value, against)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", f.bench, f.unit, num(f.value), beside, num(against), ratio, goalText, verdict)
		}
		if rows == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\t\t\t\t\t\n", f.bench, f.unit, num(f.value))
		}
	}
	tw.Flush()
}

// baseName drops sub-benchmark parts: goals name the top benchmark.
func baseName(name string) string {
	b, _, _ := strings.Cut(name, "/")
	return b
}

// against finds the peer figure (or the limit) and says what it is.
func (g goal) against(bench string, byKey map[[2]string]float64) (string, float64, bool) {
	if g.peer == "" {
		return "limit", g.limit, true
	}
	if other, unit, ok := strings.Cut(g.peer, ":"); ok {
		v, found := byKey[[2]string{other, unit}]
		return other + " " + unit, v, found
	}
	v, found := byKey[[2]string{bench, g.peer}]
	return g.peer, v, found
}

// judge gives the ratio, the goal in words and whether it holds.
func (g goal) judge(value, against float64) (ratio, goalText, verdict string) {
	if g.want == 0 && against == 0 {
		// An exact limit of nothing: 5xx, losses.
		if value <= 0 {
			return "", "= 0", "met"
		}
		return "", "= 0", "MISSED"
	}
	if against == 0 {
		return "", "", ""
	}
	r := value / against
	ratio = fmt.Sprintf("%.3g×", r)
	if g.want == 0 {
		return ratio, "", "" // a reference, no goal
	}
	if g.lower {
		goalText = fmt.Sprintf("≤ %g×", g.want)
		if r <= g.want {
			return ratio, goalText, "met"
		}
		return ratio, goalText, "MISSED"
	}
	goalText = fmt.Sprintf("≥ %g×", g.want)
	if r >= g.want {
		return ratio, goalText, "met"
	}
	return ratio, goalText, "MISSED"
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
