package tooltest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// DieWithParent has the kernel kill cmd's process if the test binary dies
// without cleaning up, so no server outlives its tests.
func DieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// lockBuild takes a lock that every test process on the machine shares, so
// one builds while the others wait and then find the build cached.
func lockBuild() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "imagehub-tooltest-build.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("error opening the build lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("error taking the build lock: %w", err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}
