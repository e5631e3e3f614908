package blobtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// dieWithParent has the kernel kill the server if the test binary dies
// without cleaning up (a panic, a timeout, Ctrl-C), so no server outlives
// its tests.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// lockBuild takes a lock that every test process on the machine shares, so
// one builds versitygw while the others wait and then find it cached.
func lockBuild() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "imagehub-blobtest-build.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("error opening the build lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("error taking the build lock: %w", err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}
