//go:build e2e

package harness

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBrowserStartsWithDesignFlagsAndStopsClean checks the flags Chromium runs with, that the
// leftover detector sees its processes while it runs, and that Close leaves none.
func TestBrowserStartsWithDesignFlagsAndStopsClean(t *testing.T) {
	b := NewBrowser(t, BrowserOptions{})
	require.NotZero(t, b.PID())
	running := browserProcesses(b.dataDir)
	require.Contains(t, running, b.PID(), "the detector finds the browser by its user data dir")

	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(b.PID()) + "/cmdline")
	require.NoError(t, err)
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	for _, f := range BrowserFlags(BrowserOptions{}) {
		require.Contains(t, args, f)
	}
	require.Contains(t, args, "--user-data-dir="+b.dataDir)

	page := b.NewPage()
	require.NoError(t, page.Open("about:blank"))
	var sum int
	require.NoError(t, page.Eval(`Promise.resolve(40 + 2)`, &sum))
	require.Equal(t, 42, sum)
	require.NoError(t, page.Eval(`console.log('hello', 7)`, nil))
	_, err = page.WaitFor(`document.readyState === 'complete'`, 0)
	require.NoError(t, err)
	_, err = page.WaitFor(`false`, 0)
	require.ErrorIs(t, err, ErrBrowserTimeout)

	b.Close()
	require.Empty(t, browserProcesses(b.dataDir), "no Chromium process is left after Close")
	_, err = os.Stat("/proc/" + strconv.Itoa(b.PID()))
	require.True(t, os.IsNotExist(err), "the main process is gone")
	require.Contains(t, page.Console(), "console.log: hello 7")
}
