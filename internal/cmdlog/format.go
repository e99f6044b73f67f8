package cmdlog

import (
	"encoding/base64"
	"strconv"
)

// Header is the first line of every log file (and of every UDP datagram).
const Header = "# petrel-cmdlog v1 fields=time,client,cmd,key,flags,vlen,ttl,result,rlen\n"

// Cmd is a logged command. Text and meta commands have their own codes;
// a binary opcode op is CmdBinary+op.
type Cmd uint8

// The commands of the text and meta protocols.
const (
	CmdOther Cmd = iota
	CmdGet
	CmdGets
	CmdGat
	CmdGats
	CmdSet
	CmdAdd
	CmdReplace
	CmdAppend
	CmdPrepend
	CmdCas
	CmdDelete
	CmdIncr
	CmdDecr
	CmdTouch
	CmdFlushAll
	CmdMg
	CmdMs
	CmdMd
	CmdMa
	CmdMn
	CmdMe
	numTextCmds
	// CmdBinary is the code of binary opcode 0; opcode op is CmdBinary+op.
	CmdBinary Cmd = 64
)

var textCmdNames = [numTextCmds]string{
	"other", "get", "gets", "gat", "gats", "set", "add", "replace", "append",
	"prepend", "cas", "delete", "incr", "decr", "touch", "flush_all",
	"mg", "ms", "md", "ma", "mn", "me",
}

// binNames are the binary opcodes under their text names, as memcached's
// protocol_binary.h lists them; quiet variants end in q.
var binNames = map[byte]string{
	0x00: "b:get", 0x01: "b:set", 0x02: "b:add", 0x03: "b:replace", 0x04: "b:delete",
	0x05: "b:incr", 0x06: "b:decr", 0x07: "b:quit", 0x08: "b:flush_all", 0x09: "b:getq",
	0x0a: "b:noop", 0x0b: "b:version", 0x0c: "b:getk", 0x0d: "b:getkq", 0x0e: "b:append",
	0x0f: "b:prepend", 0x10: "b:stats", 0x11: "b:setq", 0x12: "b:addq", 0x13: "b:replaceq",
	0x14: "b:deleteq", 0x15: "b:incrq", 0x16: "b:decrq", 0x17: "b:quitq", 0x18: "b:flush_allq",
	0x19: "b:appendq", 0x1a: "b:prependq", 0x1b: "b:verbosity", 0x1c: "b:touch", 0x1d: "b:gat",
	0x1e: "b:gatq", 0x20: "b:sasl_list", 0x21: "b:sasl_auth", 0x22: "b:sasl_step",
	0x23: "b:gatk", 0x24: "b:gatkq",
}

// BinCmd is the code of binary opcode op, or CmdOther for one the log has
// no name for.
func BinCmd(op byte) Cmd {
	if _, ok := binNames[op]; !ok {
		return CmdOther
	}
	return CmdBinary + Cmd(op)
}

// String is the command's name in the log.
func (c Cmd) String() string {
	if c < numTextCmds {
		return textCmdNames[c]
	}
	if c >= CmdBinary {
		if s, ok := binNames[byte(c-CmdBinary)]; ok {
			return s
		}
	}
	return "other"
}

// Result is a request's outcome.
type Result uint8

// The outcomes; docs/cmdlog.md says which reply maps to which.
const (
	ResOK Result = iota
	ResHit
	ResMiss
	ResStored
	ResNotStored
	ResExists
	ResNotFound
	ResDeleted
	ResTouched
	ResError
	numResults
)

var resultNames = [numResults]string{
	"ok", "hit", "miss", "stored", "not_stored", "exists", "not_found", "deleted", "touched", "error",
}

func (r Result) String() string {
	if r < numResults {
		return resultNames[r]
	}
	return "ok"
}

// AppendKey appends the key field: the bytes themselves when all are
// printable ASCII without space (0x21..0x7e), otherwise "b64:" and their
// standard base64; with hash, "h:" and the FNV-1a 64 hash in 16 hex digits.
func AppendKey(dst, key []byte, hash bool) []byte {
	if hash {
		dst = append(dst, "h:"...)
		h := HashKey(key)
		const hex = "0123456789abcdef"
		for i := 60; i >= 0; i -= 4 {
			dst = append(dst, hex[(h>>uint(i))&0xf])
		}
		return dst
	}
	plain := len(key) > 0
	for _, c := range key {
		if c < 0x21 || c > 0x7e {
			plain = false
			break
		}
	}
	if plain {
		return append(dst, key...)
	}
	dst = append(dst, "b64:"...)
	return base64.StdEncoding.AppendEncode(dst, key)
}

// HashKey is FNV-1a 64 (the hash --cmdlog-hash-keys prints): simple enough
// for any reader to reproduce, and a key's hash is stable across runs so
// that logs from several days can be joined.
func HashKey(key []byte) uint64 {
	const (
		offset = 14695981039346656037
		prime  = 1099511628211
	)
	h := uint64(offset)
	for _, c := range key {
		h ^= uint64(c)
		h *= prime
	}
	return h
}

// AppendLine appends rec as one log line, "\n" included. client is used
// when the record carries none.
func AppendLine(dst []byte, rec *Record, client string, hash bool) []byte {
	sec, us := rec.Time/1e6, rec.Time%1e6
	if us < 0 {
		sec, us = sec-1, us+1e6
	}
	dst = strconv.AppendInt(dst, sec, 10)
	dst = append(dst, '.')
	var frac [6]byte
	for i := 5; i >= 0; i-- {
		frac[i] = byte('0' + us%10)
		us /= 10
	}
	dst = append(dst, frac[:]...)
	dst = append(dst, ' ')
	if rec.Client != nil {
		dst = append(dst, rec.Client...)
	} else {
		dst = append(dst, client...)
	}
	dst = append(dst, ' ')
	dst = append(dst, rec.Cmd.String()...)
	dst = append(dst, ' ')
	if rec.NoKey {
		dst = append(dst, '-')
	} else {
		dst = AppendKey(dst, rec.Key, hash)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(rec.Flags), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(rec.VLen), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, rec.TTL, 10)
	dst = append(dst, ' ')
	dst = append(dst, rec.Result.String()...)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(rec.RLen), 10)
	return append(dst, '\n')
}

// ClientAddr turns a connection's address as the server names it
// ("tcp:1.2.3.4:5", "unix:/path") into the log's client field.
func ClientAddr(remote string) string {
	switch {
	case len(remote) >= 4 && remote[:4] == "tcp:":
		return remote[4:]
	case len(remote) >= 5 && remote[:5] == "unix:":
		return "unix"
	case remote == "":
		return "unknown"
	}
	return remote
}
