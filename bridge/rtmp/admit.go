package rtmp

import (
	"fmt"
	"io"
	"time"

	"github.com/yutopp/go-rtmp/message"
)

// codeConnectRejected is the onStatus code of a connection Deps.Admit refused.
const codeConnectRejected message.NetStreamOnStatusCode = "NetConnection.Connect.Rejected"

// admit asks Deps.Admit whether the connection may stay, once connect has been read (connection
// goroutine). A refusal is answered with an error onStatus whose description is the reason (ffmpeg
// prints it as "Server error: ..."); the returned error makes go-rtmp answer connect with _error and
// close the connection.
func (ss *session) admit() error {
	if ss.srv.deps.Admit == nil {
		return nil
	}
	release, err := ss.srv.deps.Admit()
	if err != nil {
		reason := err.Error()
		ss.log.Warn("rtmp connection refused", "reason", reason)
		if werr := ss.writeStatus(0, 0, message.NetStreamOnStatusLevelError, codeConnectRejected, reason); werr != nil {
			ss.log.Debug("rtmp onStatus write failed", "err", werr)
		} else {
			ss.lingerClose()
		}
		return fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if release != nil {
		ss.release.Store(&release)
	}
	return nil
}

// releaseAdmission gives back the admission (once) when the connection closes.
func (ss *session) releaseAdmission() {
	if f := ss.release.Swap(nil); f != nil {
		(*f)()
	}
}

// lingerTime bounds how long a refused connection is drained before it is closed.
const lingerTime = 2 * time.Second

// lingerClose reads what the client of a refused connection still sends until it closes (at most
// lingerTime, 64 KiB) before we close: closing with its pipelined commands (releaseStream, FCPublish,
// createStream) unread would reset the connection, and the client could lose the onStatus (written
// by go-rtmp's writer goroutine meanwhile) and see only "Broken pipe".
func (ss *session) lingerClose() {
	c := ss.nc.Conn
	_ = c.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}
