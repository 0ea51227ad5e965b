package rtc

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// batchPair is a batchConn and a plain receiving socket on loopback.
func batchPair(t *testing.T, gso bool) (*sender, *batchConn, *net.UDPConn, netip.AddrPort) {
	t.Helper()
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rx.Close() })
	_ = rx.SetReadBuffer(4 << 20)
	tx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	out := newSender(gso)
	bc := newBatchConn(tx, out)
	t.Cleanup(func() { _ = bc.Close() })
	return out, bc, rx, rx.LocalAddr().(*net.UDPAddr).AddrPort()
}

// datagram makes a datagram of n bytes that names its writer and index.
func datagram(writer, i, n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint16(b, uint16(writer))
	binary.BigEndian.PutUint32(b[2:], uint32(i))
	for k := 6; k < n; k++ {
		b[k] = byte(i + k)
	}
	return b
}

func readAll(t *testing.T, rx *net.UDPConn, n int) [][]byte {
	t.Helper()
	var got [][]byte
	buf := make([]byte, 65536)
	for len(got) < n {
		require.NoError(t, rx.SetReadDeadline(time.Now().Add(2*time.Second)))
		k, err := rx.Read(buf)
		require.NoError(t, err, "after %d of %d datagrams", len(got), n)
		got = append(got, append([]byte(nil), buf[:k]...))
	}
	return got
}

func nothingArrives(t *testing.T, rx *net.UDPConn) {
	t.Helper()
	require.NoError(t, rx.SetReadDeadline(time.Now().Add(30*time.Millisecond)))
	_, err := rx.Read(make([]byte, 2048))
	require.Error(t, err, "a datagram arrived while the destination was corked")
}

func TestDestQueueBatches(t *testing.T) {
	sizes := []int{1200, 1200, 1200, 1200, 1200, 1200, 700, 1200, 1200, 1200, 1300, 50, 50, 1250}
	for _, gso := range []bool{true, false} {
		name := map[bool]string{true: "gso", false: "no gso"}[gso]
		t.Run(name, func(t *testing.T) {
			out, bc, rx, dst := batchPair(t, gso)
			if gso {
				require.True(t, bc.gso.Load(), "this Linux has UDP GSO (4.18+)")
			}
			q := out.acquire(dst)
			defer out.release(q)
			q.cork()
			var want [][]byte
			for i, n := range sizes {
				b := datagram(1, i, n)
				want = append(want, b)
				k, err := bc.WriteTo(b, net.UDPAddrFromAddrPort(dst))
				require.NoError(t, err)
				require.Equal(t, n, k)
			}
			nothingArrives(t, rx)
			q.uncork()
			got := readAll(t, rx, len(sizes))
			require.Equal(t, want, got, "every datagram arrives whole, in order")
			st := SendStats{Datagrams: out.datagrams.Load(), Syscalls: out.syscalls.Load()}
			t.Logf("%d datagrams in %d system calls", st.Datagrams, st.Syscalls)
			require.Equal(t, uint64(len(sizes)), st.Datagrams)
			if gso {
				// Runs: 6x1200+700 | 3x1200 | 1300+50 | 50 | 1250 = 5 sends.
				require.Equal(t, uint64(5), st.Syscalls)
			} else {
				require.Equal(t, uint64(len(sizes)), st.Syscalls)
			}
			// Uncorked: straight out, not counted as batched.
			_, err := bc.WriteToAddrPort(datagram(1, 99, 100), dst)
			require.NoError(t, err)
			require.Len(t, readAll(t, rx, 1), 1)
			require.Equal(t, uint64(len(sizes)), out.datagrams.Load())
		})
	}
}

func TestDestQueueLongRun(t *testing.T) {
	// More than maxSegments equal datagrams, and more than maxGSOBytes: split into several sends.
	out, bc, rx, dst := batchPair(t, true)
	q := out.acquire(dst)
	defer out.release(q)
	q.cork()
	const n = 150
	for i := range n {
		_, err := bc.WriteToAddrPort(datagram(1, i, 1200), dst)
		require.NoError(t, err)
	}
	q.uncork()
	got := readAll(t, rx, n)
	for i, b := range got {
		require.Equal(t, uint32(i), binary.BigEndian.Uint32(b[2:]))
	}
	calls := out.syscalls.Load()
	t.Logf("%d datagrams of 1200 bytes in %d system calls", n, calls)
	require.Equal(t, uint64(3), calls, "54 per send (65000 bytes)")
}

func TestDestQueueConcurrentWriters(t *testing.T) {
	// Two writers (a viewer's audio and video) cork the same destination at once; a third sends
	// uncorked. Every datagram arrives once and each writer's stay in order.
	out, bc, rx, dst := batchPair(t, true)
	const writers, per = 3, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; {
				var q *destQueue
				if w > 0 {
					q = out.acquire(dst)
					q.cork()
				}
				for k := 0; k < 1+i%7 && i < per; k++ {
					_, _ = bc.WriteToAddrPort(datagram(w, i, 200+w*100), dst)
					i++
				}
				if q != nil {
					q.uncork()
					out.release(q)
				}
				if i%50 == 0 {
					time.Sleep(time.Millisecond) // let the receiver keep up
				}
			}
		}()
	}
	wg.Wait()
	got := readAll(t, rx, writers*per)
	next := make([]uint32, writers)
	for _, b := range got {
		w := binary.BigEndian.Uint16(b)
		i := binary.BigEndian.Uint32(b[2:])
		require.Equal(t, next[w], i, "writer %d out of order", w)
		next[w]++
	}
	require.Zero(t, out.n.Load(), "released destinations leave the map")
}

func TestBatchFollowsSelectedPair(t *testing.T) {
	out := newSender(true)
	b := &Batch{out: out}
	require.Nil(t, b.begin(), "no pair selected yet")
	ap := netip.MustParseAddrPort("127.0.0.1:5000")
	b.dst.Store(&ap)
	b.retain()
	q := b.begin()
	require.NotNil(t, q)
	q.uncork()
	require.Same(t, q, out.lookup(ap))
	ap2 := netip.MustParseAddrPort("127.0.0.1:5001")
	b.dst.Store(&ap2)
	q2 := b.begin()
	require.NotSame(t, q, q2, "a new pair gets its own queue")
	q2.uncork()
	require.Nil(t, out.lookup(ap), "the old destination is released")
	b.release()
	require.Nil(t, out.lookup(ap2))
	require.Nil(t, b.begin(), "closed")
}
