// Command mkimage builds the hub's container image without Docker: a static
// imagehub binary (CGO_ENABLED=0, the migrations embedded in it as always),
// an /etc/passwd naming the non-root user 65532, the host's CA bundle for
// S3 and OpenID over TLS, and an empty /tmp, the one writable place, on an
// empty base. It writes an OCI image layout as a tarball.
//
// The image is reproducible: the binary is built with -trimpath and no
// build id, every file has a fixed time and owner, entries are sorted, and
// the config's dates are fixed, so one commit (and one CA bundle) gives one
// digest. It lives in the tools module so that go-containerregistry stays
// out of the program's go.mod.
//
//	cd tools && go run ./mkimage -src .. -o ../bin/imagehub-oci.tar
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's fixed facts; the Dockerfile says the same (deploy/image_test.go checks).
const (
	uid        = 65532
	binaryPath = "/usr/local/bin/imagehub"
	caPath     = "/etc/ssl/certs/ca-certificates.crt"
)

var ports = []string{"8080/tcp", "9090/tcp"}

func main() {
	src := flag.String("src", "..", "the repository root (holds cmd/imagehub)")
	out := flag.String("o", "imagehub-oci.tar", "the OCI layout tarball to write")
	arch := flag.String("arch", "amd64", "GOARCH of the image")
	ca := flag.String("ca", caPath, "the CA bundle to put in the image (empty: none)")
	tag := flag.String("tag", "imagehub:latest", "the org.opencontainers.image.ref.name of the image in the layout")
	flag.Parse()
	if err := run(*src, *out, *arch, *ca, *tag); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

// epoch is every file's and the config's time: SOURCE_DATE_EPOCH when set
// (reproducible-builds.org), else the Unix epoch.
func epoch() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Unix(0, 0).UTC(), nil
}

// pinnedToolchain is the Go toolchain of the module at gomod: its
// toolchain line, else its go line as "go1.26.8". A go line names an exact
// release (three numbers) here; `toolchain` equal to it is refused by the
// go command itself, so the go line is the pin.
func pinnedToolchain(gomod string) (string, error) {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", fmt.Errorf("error reading %s: %w", gomod, err)
	}
	var goLine, toolchain string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "go":
			goLine = "go" + f[1]
		case len(f) == 2 && f[0] == "toolchain":
			toolchain = f[1]
		}
	}
	if toolchain != "" {
		return toolchain, nil
	}
	if strings.Count(goLine, ".") != 2 {
		return "", fmt.Errorf("%s: the go line %q names no exact release (go 1.26.8) to build the image with", gomod, goLine)
	}
	return goLine, nil
}

func run(src, out, arch, ca, tag string) error {
	when, err := epoch()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "mkimage")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	toolchain, err := pinnedToolchain(filepath.Join(src, "go.mod"))
	if err != nil {
		return err
	}
	bin := filepath.Join(work, "imagehub")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", bin, "./cmd/imagehub")
	build.Dir = src
	// The compiler is part of the binary's bytes: build with exactly the Go
	// that go.mod names, whatever Go runs this (the go command fetches it
	// when the local one differs, and uses the local one when it is that).
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOWORK=off", "GOFLAGS=-mod=readonly",
		"GOTOOLCHAIN="+toolchain)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("error building imagehub: %w", err)
	}
	binBytes, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	files := []file{
		{name: "etc/", mode: 0o755 | fs.ModeDir},
		{name: "etc/passwd", mode: 0o644, body: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/tmp:/sbin/nologin\n", uid, uid))},
		{name: "etc/group", mode: 0o644, body: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid))},
		{name: "tmp/", mode: 0o1777 | fs.ModeDir},
		{name: "usr/", mode: 0o755 | fs.ModeDir},
		{name: "usr/local/", mode: 0o755 | fs.ModeDir},
		{name: "usr/local/bin/", mode: 0o755 | fs.ModeDir},
		{name: binaryPath[1:], mode: 0o755, body: binBytes},
	}
	if ca != "" {
		b, err := os.ReadFile(ca)
		if err != nil {
			return fmt.Errorf("error reading the CA bundle (-ca \"\" leaves it out): %w", err)
		}
		files = append(files,
			file{name: "etc/ssl/", mode: 0o755 | fs.ModeDir},
			file{name: "etc/ssl/certs/", mode: 0o755 | fs.ModeDir},
			file{name: caPath[1:], mode: 0o644, body: b})
	}
	layerTar, err := tarFiles(files, when)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return fmt.Errorf("error making the layer: %w", err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return fmt.Errorf("error adding the layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = arch, "linux"
	cfg.Created = v1.Time{Time: when}
	exposed := map[string]struct{}{}
	for _, p := range ports {
		exposed[p] = struct{}{}
	}
	cfg.Config = v1.Config{
		User:         fmt.Sprintf("%d:%d", uid, uid),
		Entrypoint:   []string{binaryPath},
		Cmd:          []string{"serve"},
		WorkingDir:   "/tmp",
		Env:          []string{"DATA_DIR=/tmp/imagehub", "SSL_CERT_FILE=" + caPath},
		ExposedPorts: exposed,
		Volumes:      map[string]struct{}{"/tmp": {}},
		Labels: map[string]string{
			"org.opencontainers.image.title":  "imagehub",
			"org.opencontainers.image.source": "https://github.com/deepimageshub/imagehub",
		},
	}
	cfg.History = []v1.History{{Created: v1.Time{Time: when}, CreatedBy: "tools/mkimage", Comment: "imagehub static binary"}}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return fmt.Errorf("error setting the config: %w", err)
	}

	dir := filepath.Join(work, "layout")
	p, err := layout.Write(dir, mutate.IndexMediaType(empty.Index, types.OCIImageIndex))
	if err != nil {
		return fmt.Errorf("error writing the layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		return fmt.Errorf("error writing the image: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	if err := tarDir(dir, out, when); err != nil {
		return err
	}
	fmt.Println(digest)
	return nil
}

type file struct {
	name string
	mode fs.FileMode
	body []byte
}

// tarFiles writes the layer: sorted, owned by root, at one time.
func tarFiles(files []file, when time.Time) ([]byte, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: int64(f.mode.Perm()), ModTime: when, Format: tar.FormatPAX, Uname: "root", Gname: "root"}
		if f.mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		if f.mode.IsDir() {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// tarDir packs the OCI layout folder, sorted and at one time, into out.
func tarDir(dir, out string, when time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			names = append(names, path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, path := range names {
		rel, _ := filepath.Rel(dir, path)
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: when, Mode: 0o644, Format: tar.FormatPAX}
		var body []byte
		if info.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
		} else {
			if body, err = os.ReadFile(path); err != nil {
				return err
			}
			h.Typeflag, h.Size = tar.TypeReg, int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(body); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
