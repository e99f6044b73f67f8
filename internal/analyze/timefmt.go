package analyze

import "time"

func stamp(sec float64) string {
	return time.Unix(int64(sec), 0).UTC().Format("2006-01-02 15:04:05")
}

func dur(sec float64) string {
	return time.Duration(sec * float64(time.Second)).Round(time.Second).String()
}
