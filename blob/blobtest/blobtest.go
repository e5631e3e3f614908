// Package blobtest starts a real S3-compatible server for tests: versitygw
// with its posix backend, on a loopback port, over a temporary folder. The
// server is built from the pinned version in tools/versitygw/go.mod through
// `go tool`, which caches the build after the first time.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/deepimageshub/imagehub/blob"
)

// Server is a running S3-compatible server.
type Server struct {
	Endpoint  string
	AccessKey string
	SecretKey string
	cmd       *exec.Cmd
	exited    chan struct{}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary returns the path of the versitygw executable, building it the first
// time (a minute or two; cached by the go command afterwards).
func binary() (string, error) {
	binOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		modfile := filepath.Join(filepath.Dir(file), "..", "..", "tools", "versitygw", "go.mod")
		var out, errb bytes.Buffer
		cmd := exec.Command("go", "tool", "-modfile="+modfile, "-n", "versitygw")
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			binErr = fmt.Errorf("error building versitygw (go tool -modfile=%s -n versitygw): %v\n%s", modfile, err, errb.String())
			return
		}
		binPath = strings.TrimSpace(out.String())
	})
	return binPath, binErr
}

// Start starts a server that stops when the test ends. It fails the test,
// never skips it, when the server cannot be built or started.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := binary()
	if err != nil {
		tb.Fatalf("blobtest: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("blobtest: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	root := tb.TempDir()
	s := &Server{Endpoint: "http://" + addr, AccessKey: "test-" + randomHex(6), SecretKey: randomHex(20), exited: make(chan struct{})}
	s.cmd = exec.Command(bin, "--port", addr, "--access", s.AccessKey, "--secret", s.SecretKey, "--quiet", "posix", root)
	var logs bytes.Buffer
	s.cmd.Stdout, s.cmd.Stderr = &logs, &logs
	if err := s.cmd.Start(); err != nil {
		tb.Fatalf("blobtest: error starting versitygw: %v", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	tb.Cleanup(s.Stop)

	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(s.Endpoint)
		if err == nil {
			res.Body.Close()
			break
		}
		select {
		case <-s.exited:
			tb.Fatalf("blobtest: versitygw exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("blobtest: versitygw did not answer on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// Stop stops the server (tests of an unreachable store call it early).
func (s *Server) Stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// NewBucket creates a bucket and returns a blob store URL for it.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	bucket := "test-" + randomHex(6)
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.Endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		tb.Fatalf("blobtest: error creating bucket: %v", err)
	}
	return fmt.Sprintf("s3://%s/imagehub?endpoint=%s&path_style=true&region=us-east-1", bucket, s.Endpoint)
}

// Open opens a store on a fresh bucket of the server.
func (s *Server) Open(tb testing.TB) blob.Store {
	tb.Helper()
	st, err := blob.Open(context.Background(), s.NewBucket(tb), blob.WithStaticCredentials(s.AccessKey, s.SecretKey))
	if err != nil {
		tb.Fatalf("blobtest: %v", err)
	}
	return st
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Env returns environment variables that let a separate imagehub process
// reach the server through the SDK's standard credential chain.
func (s *Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey, "AWS_REGION=us-east-1"}
}
