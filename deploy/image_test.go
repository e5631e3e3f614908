package deploy

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// buildImage runs tools/mkimage (what `make image` runs) with env added to
// its environment and returns the image digest it printed and the
// tarball's files.
func buildImage(t *testing.T, env ...string) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	mkimage := filepath.Join(dir, "mkimage")
	build := exec.Command("go", "build", "-o", mkimage, "./mkimage")
	build.Dir = "../tools"
	build.Env = append(os.Environ(), "GOWORK=off")
	outb, err := build.CombinedOutput()
	require.NoError(t, err, "%s", outb)
	out := filepath.Join(dir, "image.tar")
	args := []string{"-src", "..", "-o", out}
	if _, err := os.Stat("/etc/ssl/certs/ca-certificates.crt"); err != nil {
		args = append(args, "-ca", "") // a machine without Debian's ca-certificates
	}
	cmd := exec.Command(mkimage, args...)
	cmd.Dir = "../tools"
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	return strings.TrimSpace(stdout.String()), readTar(t, f)
}

func readTar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		files[h.Name] = b
	}
}

func layoutBlob(t *testing.T, files map[string][]byte, digest string) []byte {
	t.Helper()
	b, ok := files["blobs/"+strings.Replace(digest, ":", "/", 1)]
	require.True(t, ok, "blob %s", digest)
	return b
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
}

// TestImageReproducibleAndMinimal: two builds of one tree give one digest
// and the same bytes; the image runs imagehub as 65532 with no shell, and
// the Dockerfile says the same user, entrypoint, ports and volume.
func TestImageReproducibleAndMinimal(t *testing.T) {
	t.Parallel()
	d1, files1 := buildImage(t)
	// Whatever Go the builder's environment asks for (here one that does
	// not exist, and nothing may be downloaded), mkimage builds with the
	// Go that go.mod names, so the digest does not depend on the machine.
	d2, files2 := buildImage(t, "GOTOOLCHAIN=go1.99.0", "GOPROXY=off")
	require.Equal(t, d1, d2, "same tree, same digest")
	require.Equal(t, files1, files2, "same tree, same bytes")

	var index struct {
		Manifests []descriptor `json:"manifests"`
	}
	require.NoError(t, json.Unmarshal(files1["index.json"], &index))
	require.Len(t, index.Manifests, 1)
	require.Equal(t, d1, index.Manifests[0].Digest)
	var manifest struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	require.NoError(t, json.Unmarshal(layoutBlob(t, files1, d1), &manifest))
	var cfg struct {
		Config struct {
			User         string              `json:"User"`
			Entrypoint   []string            `json:"Entrypoint"`
			Cmd          []string            `json:"Cmd"`
			ExposedPorts map[string]struct{} `json:"ExposedPorts"`
			Volumes      map[string]struct{} `json:"Volumes"`
		} `json:"config"`
	}
	require.NoError(t, json.Unmarshal(layoutBlob(t, files1, manifest.Config.Digest), &cfg))
	require.Equal(t, "65532:65532", cfg.Config.User)
	require.Equal(t, []string{"/usr/local/bin/imagehub"}, cfg.Config.Entrypoint)
	require.Equal(t, []string{"serve"}, cfg.Config.Cmd)

	require.Len(t, manifest.Layers, 1)
	gz, err := gzip.NewReader(bytes.NewReader(layoutBlob(t, files1, manifest.Layers[0].Digest)))
	require.NoError(t, err)
	layer := readTar(t, gz)
	require.Contains(t, layer, "usr/local/bin/imagehub")
	info, err := buildinfo.Read(bytes.NewReader(layer["usr/local/bin/imagehub"]))
	require.NoError(t, err)
	require.Equal(t, goModVersion(t, "../go.mod"), info.GoVersion, "built with the Go that go.mod names")
	require.Contains(t, layer, "tmp/")
	require.Contains(t, string(layer["etc/passwd"]), "nonroot:x:65532:65532:")
	for name := range layer {
		require.NotContains(t, []string{"bin/sh", "bin/bash", "bin/busybox"}, name, "no shell")
	}

	// The Dockerfile's final stage says the same.
	df := dockerfileFinalStage(t)
	require.Equal(t, "65532:65532", df["USER"])
	require.Equal(t, `["/usr/local/bin/imagehub"]`, df["ENTRYPOINT"])
	require.Equal(t, `["serve"]`, df["CMD"])
	require.Equal(t, `["/tmp"]`, df["VOLUME"])
	var ports []string
	for p := range cfg.Config.ExposedPorts {
		ports = append(ports, p)
	}
	require.ElementsMatch(t, strings.Fields(df["EXPOSE"]), ports)
	require.ElementsMatch(t, []string{"/tmp"}, keys(cfg.Config.Volumes))
	require.Contains(t, df["FROM"], "distroless/static")
}

// goModVersion is gomod's go line as a toolchain name, "go1.26.8".
func goModVersion(t *testing.T, gomod string) string {
	t.Helper()
	b, err := os.ReadFile(gomod)
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go "); ok {
			return "go" + strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no go line", gomod)
	return ""
}

// TestToolchainPinned: the program's and the tools' modules name one exact
// Go release, and the Dockerfile builds with that release's image, so that
// `make image` and `docker build` compile with the same Go.
func TestToolchainPinned(t *testing.T) {
	t.Parallel()
	v := goModVersion(t, "../go.mod")
	require.Equal(t, 2, strings.Count(v, "."), "go.mod names an exact release: %s", v)
	require.Equal(t, v, goModVersion(t, "../tools/go.mod"))
	df, err := os.ReadFile("../Dockerfile")
	require.NoError(t, err)
	require.Contains(t, string(df), "\nFROM golang:"+strings.TrimPrefix(v, "go")+" AS build\n")
}

func keys(m map[string]struct{}) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	return k
}

// dockerfileFinalStage reads the instructions of the Dockerfile's last stage.
func dockerfileFinalStage(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	require.NoError(t, err)
	defer f.Close()
	var stage map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, arg, _ := strings.Cut(line, " ")
		instr = strings.ToUpper(instr)
		if instr == "FROM" {
			stage = map[string]string{}
		}
		stage[instr] = strings.TrimSpace(arg)
	}
	require.NoError(t, sc.Err())
	return stage
}
