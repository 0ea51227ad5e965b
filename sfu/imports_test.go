package sfu

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImports keeps the core's boundary: package sfu imports only the standard library and pion.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			require.NoError(t, err)
			first := strings.SplitN(path, "/", 2)[0]
			ok := !strings.Contains(first, ".") || strings.HasPrefix(path, "github.com/pion/")
			require.True(t, ok, "%s imports %s: sfu may import only the standard library and pion", name, path)
		}
	}
}
