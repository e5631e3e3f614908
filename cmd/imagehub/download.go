package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/deepimageshub/imagehub/download"
)

// downloadCmd: imagehub download --token T --url BASE DATASET VERSION
// [--format F] [--split S] [--labels a,b] -o OUT.zip (package download).
func downloadCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("download", flag.ContinueOnError)
	fset.SetOutput(stderr)
	token := fset.String("token", getenv("IMAGEHUB_TOKEN"), "a premium token, else IMAGEHUB_TOKEN")
	base := fset.String("url", getenv("IMAGEHUB_URL"), "the hub's base URL, else IMAGEHUB_URL")
	format := fset.String("format", "", "coco (the hub's default), png, yolo or voc")
	split := fset.String("split", "", "comma-separated splits (default all)")
	labels := fset.String("labels", "", "comma-separated labels (default all)")
	out := fset.String("o", "", "the zip to write (OUT.part while it downloads)")
	retries := fset.Int("retries", 5, "how many times a broken transfer is taken up again")
	retryWait := fset.Duration("retry-wait", 2*time.Second, "the first wait before taking it up again (doubling)")
	quiet := fset.Bool("quiet", false, "no progress")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: imagehub download --token T --url BASE DATASET VERSION [--format coco --split train --labels a,b] -o out.zip")
		fset.PrintDefaults()
	}
	// Flags may come after the positional arguments too.
	var pos []string
	for rest := args; ; {
		if err := fset.Parse(rest); err != nil {
			return errUsage
		}
		if fset.NArg() == 0 {
			break
		}
		pos = append(pos, fset.Arg(0))
		rest = fset.Args()[1:]
	}
	bad := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "imagehub download: "+format+"\n", a...)
		return errUsage
	}
	if len(pos) != 2 {
		return bad("give the dataset (id or name) and the version number")
	}
	version, err := strconv.Atoi(pos[1])
	switch {
	case err != nil || version < 1:
		return bad("the version is a number such as 3, not %q", pos[1])
	case *token == "":
		return bad("--token is required (or IMAGEHUB_TOKEN)")
	case *base == "":
		return bad("--url is required (or IMAGEHUB_URL)")
	case *out == "":
		return bad("-o names the zip to write")
	}
	var prog io.Writer
	terminal := false
	if !*quiet {
		prog = stderr
		if f, ok := stderr.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				terminal = true
			}
		}
	}
	res, err := download.Run(ctx, download.Options{
		Base: *base, Token: *token, Dataset: pos[0], Version: version, Format: *format,
		Splits: list(*split), Labels: list(*labels), Out: *out,
		Retries: *retries, RetryWait: *retryWait, Progress: prog, Terminal: terminal,
	})
	if err != nil {
		// main prints it and exits 1.
		return fmt.Errorf("download: %w", err)
	}
	fmt.Fprintf(stdout, "%s: %d bytes, %d images, verified", *out, res.Bytes, res.Images)
	if res.Resumed > 0 {
		fmt.Fprintf(stdout, " (resumed %d times)", res.Resumed)
	}
	fmt.Fprintln(stdout)
	return nil
}

func list(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
