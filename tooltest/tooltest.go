// Package tooltest builds, for tests, the programs that the tools module
// pins (tools/go.mod: versitygw, the OpenID provider, helm), and ties the life of
// the servers tests start to the test binary's.
//
// The first Binary of a tool in a fresh build cache builds it with
// `go tool -n` (minutes on two cores for the large ones); later calls, in
// this process or another, find it in the go command's cache. Builds are
// serialised between test processes, which go test runs several of at once,
// so the same tool is never built twice side by side.
package tooltest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

type built struct {
	once sync.Once
	path string
	err  error
}

var binaries sync.Map // tool → *built

// Binary returns the path of the executable of tool (a tool line of
// tools/go.mod: "versitygw" or a package path), building it the first time.
func Binary(tool string) (string, error) {
	b, _ := binaries.LoadOrStore(tool, &built{})
	bb := b.(*built)
	bb.once.Do(func() { bb.path, bb.err = build(tool) })
	return bb.path, bb.err
}

func build(tool string) (string, error) {
	tools, err := toolsDir()
	if err != nil {
		return "", err
	}
	unlock, err := lockBuild()
	if err != nil {
		return "", err
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	// go test puts its own GOROOT/bin first on the PATH of test binaries,
	// so this is the go command running the tests.
	cmd := exec.CommandContext(ctx, "go", "tool", "-n", tool)
	cmd.Dir = tools
	cmd.Env = append(os.Environ(), "GOWORK=off") // the tools module alone pins it
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("error building %s (cd %s && go tool -n %s): %v\n%s", tool, tools, tool, err, stderr.String())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// toolsDir finds tools/ in the first folder, from the working directory up,
// that holds tools/go.mod: a test's working directory is its package's
// folder in the repository.
func toolsDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		tools := filepath.Join(dir, "tools")
		if _, err := os.Stat(filepath.Join(tools, "go.mod")); err == nil {
			return tools, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no tools/go.mod in the working directory or above it: the tools it pins cannot be built")
		}
		dir = parent
	}
}

// Tail keeps the last bytes written to it: a server's output, to show when
// it fails.
type Tail struct {
	mu  sync.Mutex
	buf []byte
	max int
}

// NewTail returns a Tail that keeps the last max bytes.
func NewTail(max int) *Tail { return &Tail{max: max} }

func (b *Tail) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = b.buf[len(b.buf)-b.max:]
	}
	return len(p), nil
}

// String is what was kept.
func (b *Tail) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
