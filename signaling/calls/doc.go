// Package calls is Estuary's signaling for one-to-one calls: a websocket at GET /ws/call?room={room}
// speaking small JSON messages (see Message and DecodeClient), rooms of two peers, the second joiner
// makes the offer, and the server relays offer, answer, candidate and bye to the other peer with
// "from" added. Media goes peer to peer (or through the embedded TURN server, whose time-limited
// credentials come in the "joined" message through Deps.ICEServers).
//
// Each connection runs three goroutines: a reader (the only one that reads the socket; read deadline
// = heartbeat timeout, pushed forward by every message and pong), a writer (the only one that writes:
// queued messages, pings every third of the heartbeat timeout, the close frame; every write has a
// deadline) and the loop (the HTTP handler goroutine), which owns the connection's state: joined or
// not, its rate limiter, its count of bad messages. Room membership lives in the Server under one
// mutex, and everything sent because of it (joined, peer-joined, peer-left, relayed messages) is
// queued under that mutex, so each peer sees events in one order. Queues are bounded and never
// block: a peer whose queue is full is dropped, never the sender.
package calls
