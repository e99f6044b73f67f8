package protocol

// Base64 for meta keys (the b flag) with memcached's exact acceptance rules:
// its decoder (Jouni Malinen's) skips characters outside the alphabet and
// stops at the first padded block. Clients only ever send well-formed keys,
// but the server must answer malformed ones as memcached does. (Numbers are
// in number.go.)

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// base64Value maps a byte to its 6-bit value; '=' is 0; 0x80 marks bytes
// outside the alphabet, which the decoder skips.
var base64Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0x80
	}
	for i := 0; i < len(base64Alphabet); i++ {
		t[base64Alphabet[i]] = byte(i)
	}
	t['='] = 0
	return t
}()

// Base64Decode decodes src into dst as memcached's base64_decode does and
// returns the decoded length, or 0 when memcached would refuse the input.
// dst needs len(src)/4*3 bytes.
func Base64Decode(dst, src []byte) int {
	count := 0
	for _, c := range src {
		if base64Value[c] != 0x80 {
			count++
		}
	}
	if count == 0 || count%4 != 0 || count/4*3 > len(dst) {
		return 0
	}
	var block [4]byte
	n, pos, pad := 0, 0, 0
	for _, c := range src {
		v := base64Value[c]
		if v == 0x80 {
			continue
		}
		if c == '=' {
			pad++
		}
		block[n] = v
		n++
		if n < 4 {
			continue
		}
		dst[pos] = block[0]<<2 | block[1]>>4
		dst[pos+1] = block[1]<<4 | block[2]>>2
		dst[pos+2] = block[2]<<6 | block[3]
		pos += 3
		n = 0
		if pad > 0 {
			if pad > 2 {
				return 0
			}
			pos -= pad
			break
		}
	}
	return pos
}

// AppendBase64 appends the standard, padded base64 encoding of src.
func AppendBase64(dst, src []byte) []byte {
	for len(src) >= 3 {
		dst = append(dst, base64Alphabet[src[0]>>2], base64Alphabet[(src[0]&3)<<4|src[1]>>4],
			base64Alphabet[(src[1]&0xf)<<2|src[2]>>6], base64Alphabet[src[2]&0x3f])
		src = src[3:]
	}
	switch len(src) {
	case 1:
		dst = append(dst, base64Alphabet[src[0]>>2], base64Alphabet[(src[0]&3)<<4], '=', '=')
	case 2:
		dst = append(dst, base64Alphabet[src[0]>>2], base64Alphabet[(src[0]&3)<<4|src[1]>>4],
			base64Alphabet[(src[1]&0xf)<<2], '=')
	}
	return dst
}
