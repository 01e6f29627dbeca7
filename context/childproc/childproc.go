// Package childproc starts child processes that die with this one. Linux
// sends a child its parent-death signal when the thread that forked it
// exits, not when the process does, so every child is started from one
// goroutine locked to its OS thread: the signal (SIGKILL) then fires only
// when this process itself ends, however it ends. The bench's servers and
// the tests' redis-servers are started here, so a killed bench or a
// timed-out `go test` leaves nothing behind.
package childproc

import (
	"os/exec"
	"runtime"
	"syscall"
)

// Spawner starts child processes from its own locked thread. Close it once
// every child it started is gone.
type Spawner struct {
	reqs chan request
}

type request struct {
	cmd  *exec.Cmd
	done chan error
}

// NewSpawner starts the spawner's thread.
func NewSpawner() *Spawner {
	s := &Spawner{reqs: make(chan request)}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine, after the children
		for r := range s.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	return s
}

// Start starts cmd, in a process group of its own, so that it gets SIGKILL
// when this process dies. It sets cmd.SysProcAttr.
func (s *Spawner) Start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	done := make(chan error, 1)
	s.reqs <- request{cmd, done}
	return <-done
}

// Close ends the spawner's thread. A child still running then gets its
// SIGKILL, so call Close once every child is gone.
func (s *Spawner) Close() { close(s.reqs) }
