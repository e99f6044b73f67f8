package analyze

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"strings"
)

// canvas is the little drawing surface the charts are written against,
// implemented twice: as SVG text and as an image.RGBA for PNG. Both come
// from the standard library; the PNG's text uses a 3×5 bitmap font below.
type canvas interface {
	line(x1, y1, x2, y2 float64, c color.RGBA, width float64, dashed bool)
	rect(x, y, w, h float64, fill color.RGBA)
	// text draws s with its baseline at y; anchor is "start", "middle"
	// or "end". vertical turns it 90° counter-clockwise about (x, y).
	text(x, y float64, s string, size float64, anchor string, vertical bool)
}

var (
	black  = color.RGBA{0, 0, 0, 255}
	grey   = color.RGBA{200, 200, 200, 255}
	dark   = color.RGBA{90, 90, 90, 255}
	white  = color.RGBA{255, 255, 255, 255}
	blue   = color.RGBA{31, 119, 180, 255}
	orange = color.RGBA{255, 127, 14, 255}
)

// svgCanvas accumulates SVG elements.
type svgCanvas struct {
	w, h int
	b    strings.Builder
}

func newSVG(w, h int) *svgCanvas {
	s := &svgCanvas{w: w, h: h}
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n", w, h, w, h)
	fmt.Fprintf(&s.b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", w, h)
	return s
}

func hex(c color.RGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }

func (s *svgCanvas) line(x1, y1, x2, y2 float64, c color.RGBA, width float64, dashed bool) {
	dash := ""
	if dashed {
		dash = ` stroke-dasharray="6,4"`
	}
	fmt.Fprintf(&s.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="%.1f"%s/>`+"\n", x1, y1, x2, y2, hex(c), width, dash)
}

func (s *svgCanvas) rect(x, y, w, h float64, fill color.RGBA) {
	fmt.Fprintf(&s.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y, w, h, hex(fill))
}

func (s *svgCanvas) text(x, y float64, str string, size float64, anchor string, vertical bool) {
	rot := ""
	if vertical {
		rot = fmt.Sprintf(` transform="rotate(-90 %.1f %.1f)"`, x, y)
	}
	fmt.Fprintf(&s.b, `<text x="%.1f" y="%.1f" font-size="%.0f" text-anchor="%s"%s>%s</text>`+"\n", x, y, size, anchor, rot, xmlEscape(str))
}

func (s *svgCanvas) bytes() []byte { return []byte(s.b.String() + "</svg>\n") }

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// pngCanvas rasterises onto an RGBA image: lines are stamped squares
// along a DDA walk, no anti-aliasing.
type pngCanvas struct{ img *image.RGBA }

func newPNG(w, h int) *pngCanvas {
	p := &pngCanvas{img: image.NewRGBA(image.Rect(0, 0, w, h))}
	p.rect(0, 0, float64(w), float64(h), white)
	return p
}

func (p *pngCanvas) rect(x, y, w, h float64, fill color.RGBA) {
	x0, y0 := int(math.Round(x)), int(math.Round(y))
	x1, y1 := int(math.Round(x+w)), int(math.Round(y+h))
	r := image.Rect(x0, y0, max(x1, x0+1), max(y1, y0+1)).Intersect(p.img.Bounds())
	for yy := r.Min.Y; yy < r.Max.Y; yy++ {
		for xx := r.Min.X; xx < r.Max.X; xx++ {
			p.img.SetRGBA(xx, yy, fill)
		}
	}
}

func (p *pngCanvas) line(x1, y1, x2, y2 float64, c color.RGBA, width float64, dashed bool) {
	n := int(math.Max(math.Abs(x2-x1), math.Abs(y2-y1))) + 1
	wd := math.Max(1, math.Round(width))
	for i := 0; i <= n; i++ {
		if dashed && (i/5)%2 == 1 {
			continue
		}
		t := float64(i) / float64(n)
		x, y := x1+t*(x2-x1), y1+t*(y2-y1)
		p.rect(x-wd/2, y-wd/2, wd, wd, c)
	}
}

func (p *pngCanvas) text(x, y float64, s string, size float64, anchor string, vertical bool) {
	scale := math.Max(1, math.Round(size/6))
	adv := 4 * scale
	width := adv * float64(len(s))
	off := 0.0
	switch anchor {
	case "middle":
		off = -width / 2
	case "end":
		off = -width
	}
	for i, r := range strings.ToUpper(s) {
		g, ok := font3x5[r]
		if !ok {
			continue
		}
		for row := 0; row < 5; row++ {
			for col := 0; col < 3; col++ {
				if g[row*3+col] != '#' {
					continue
				}
				dx := off + float64(i)*adv + float64(col)*scale
				dy := float64(row-5) * scale
				if vertical {
					p.rect(x+dy, y-dx-scale, scale, scale, black)
				} else {
					p.rect(x+dx, y+dy, scale, scale, black)
				}
			}
		}
	}
}

// font3x5 is a 3×5 pixel font: digits, capitals and a few signs, enough
// for axis labels.
var font3x5 = map[rune]string{
	'0': "####.##.##.####", '1': ".#.##..#..#.###", '2': "###..#####..###", '3': "###..####..####",
	'4': "#.##.####..#..#", '5': "####..###..####", '6': "####..####.####", '7': "###..#..#..#..#",
	'8': "####.#####.####", '9': "####.####..####", 'A': ".#.#.#####.##.#", 'B': "##.#.###.#.###.",
	'C': "####..#..#..###", 'D': "##.#.##.##.###.", 'E': "####..##.#..###", 'F': "####..##.#..#..",
	'G': "####..#.##.####", 'H': "#.##.#####.##.#", 'I': "###.#..#..#.###", 'J': "..#..#..##.####",
	'K': "#.##.###.#.##.#", 'L': "#..#..#..#..###", 'M': "#.########.##.#", 'N': "##.#.##.##.##.#",
	'O': "####.##.##.####", 'P': "####.#####..#..", 'Q': "####.##.####..#", 'R': "##.#.###.#.##.#",
	'S': "####..###..####", 'T': "###.#..#..#..#.", 'U': "#.##.##.##.####", 'V': "#.##.##.##.#.#.",
	'W': "#.##.########.#", 'X': "#.##.#.#.#.##.#", 'Y': "#.##.#.#..#..#.", 'Z': "###..#.#.#..###",
	'.': ".............#.", '%': "#.#..#.#.#..#.#", '-': "......###......", '/': "..#..#.#.#..#..",
	':': "....#.....#....", '(': ".#.#..#..#...#.", ')': ".#...#..#..#.#.", ',': "..........#.#..",
	'=': "...###...###...", '+': "....#.###.#....", ' ': "...............", '>': "#...#...#.#.#..",
	'<': "..#.#.#...#...#",
}
