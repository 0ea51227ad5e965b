package rtmp

import (
	"fmt"

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
