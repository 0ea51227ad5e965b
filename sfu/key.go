package sfu

// maxKeyLen bounds a stream key (it ends up in URLs, file names and registry keys).
const maxKeyLen = 256

// ValidKey reports whether key is "{app}/{stream}" with parts of [A-Za-z0-9_.-]+ and no "..".
// Each part is non-empty, neither "." nor "..", contains no "..", and the whole key is at most 256 bytes.
func ValidKey(key string) bool {
	if len(key) == 0 || len(key) > maxKeyLen {
		return false
	}
	slash := -1
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '/':
			if slash >= 0 {
				return false
			}
			slash = i
		case !keyChar(c):
			return false
		}
	}
	if slash < 0 {
		return false
	}
	return validKeyPart(key[:slash]) && validKeyPart(key[slash+1:])
}

func keyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

func validKeyPart(p string) bool {
	if p == "" || p == "." {
		return false
	}
	for i := 0; i+1 < len(p); i++ {
		if p[i] == '.' && p[i+1] == '.' {
			return false
		}
	}
	return true
}
