package camera

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// watchMask asks for the events that say a file is complete (closed after
// writing, renamed in), the ones that say a writer has it open (created) and
// the ones that say it is gone. IN_MODIFY is left out on purpose: it fires on
// every write(2) of a recording camera.
const watchMask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_CREATE |
	unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// watchDir starts delivering inotify events for dir on events. The returned
// stop function ends the reader goroutine and waits for it.
func watchDir(dir string, events chan<- event) (func() error, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("camera: inotify init: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, watchMask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("camera: inotify watch %s: %w", dir, err)
	}
	// A non-blocking fd makes the os.File pollable, so Close wakes a
	// pending Read and the goroutine can be waited for.
	f := os.NewFile(uintptr(fd), "inotify:"+dir)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		readEvents(f, events, done)
	}()
	return func() error {
		close(done)
		err := f.Close()
		wg.Wait()
		return err
	}, nil
}

func readEvents(f *os.File, events chan<- event, done <-chan struct{}) {
	buf := make([]byte, 64*1024)
	for {
		n, err := f.Read(buf)
		if err != nil {
			select {
			case events <- event{kind: evWatchLost, err: err}:
			case <-done:
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			// struct inotify_event: wd, mask, cookie, len, then len bytes of
			// NUL-padded name (inotify(7)).
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+nameLen]
			off += unix.SizeofInotifyEvent + nameLen
			for len(nameBytes) > 0 && nameBytes[len(nameBytes)-1] == 0 {
				nameBytes = nameBytes[:len(nameBytes)-1]
			}
			ev := event{name: string(nameBytes)}
			switch {
			case mask&unix.IN_Q_OVERFLOW != 0:
				ev.kind = evOverflow
			case mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_UNMOUNT) != 0:
				ev.kind = evWatchLost
			case mask&unix.IN_ISDIR != 0:
				continue
			case mask&unix.IN_CLOSE_WRITE != 0:
				ev.kind = evClosed
			case mask&unix.IN_MOVED_TO != 0:
				ev.kind = evMovedIn
			case mask&unix.IN_CREATE != 0:
				ev.kind = evCreated
			case mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0:
				ev.kind = evGone
			default:
				continue
			}
			select {
			case events <- ev:
			case <-done:
				return
			}
			if ev.kind == evWatchLost {
				return
			}
		}
	}
}

// accessWrite reports whether this process may create files in dir.
func accessWrite(dir string) error {
	return unix.Access(dir, unix.W_OK)
}
