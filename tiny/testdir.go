package tiny

import "testing"

// TestDir generates the tiny models and dataset into a fresh temporary folder for a test
// and returns it (a few tens of milliseconds).
func TestDir(tb testing.TB, seed int64) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := Generate(dir, seed); err != nil {
		tb.Fatal(err)
	}
	return dir
}
