package ssotest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// dieWithParent has the kernel kill the provider if the test binary dies
// without cleaning up, so no provider outlives its tests.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// lockBuild takes a lock that every test process on the machine shares, so
// one builds the provider while the others wait and then find it cached.
func lockBuild() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "imagehub-ssotest-build.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("error opening the build lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("error taking the build lock: %w", err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}
