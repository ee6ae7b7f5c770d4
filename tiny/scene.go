package tiny

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"math/rand/v2"
)

// Shape is the kind of figure drawn in a scene.
type Shape int

// Shapes a scene can contain.
const (
	Circle Shape = iota
	Square
	Triangle
)

var shapeNames = [...]string{"circle", "square", "triangle"}

// String returns the singular noun, e.g. "circle".
func (s Shape) String() string { return shapeNames[s] }

// Plural returns the plural noun, e.g. "circles".
func (s Shape) Plural() string { return shapeNames[s] + "s" }

// Color is a named fill colour.
type Color int

// Colours a shape can have. The first four are the basic dataset's.
const (
	Red Color = iota
	Green
	Blue
	Yellow
	Orange
	Purple
	Black
)

var colorNames = [...]string{"red", "green", "blue", "yellow", "orange", "purple", "black"}

var colorRGB = [...]color.RGBA{
	{220, 40, 40, 255},
	{40, 170, 60, 255},
	{40, 80, 220, 255},
	{235, 200, 30, 255},
	{245, 140, 20, 255},
	{140, 60, 180, 255},
	{30, 30, 30, 255},
}

// String returns the colour's name, e.g. "red".
func (c Color) String() string { return colorNames[c] }

// RGBA returns the fill colour.
func (c Color) RGBA() color.RGBA { return colorRGB[c] }

// Position is the region of the image the shapes occupy.
type Position int

// Regions: halves of the image, or its central quarter.
const (
	Left Position = iota
	Right
	Top
	Bottom
	Middle
)

var positionNames = [...]string{"left", "right", "top", "bottom", "middle"}
var positionPhrases = [...]string{"on the left", "on the right", "at the top", "at the bottom", "in the middle"}

// String returns the region's name, e.g. "left".
func (p Position) String() string { return positionNames[p] }

// Phrase returns the region as a prepositional phrase, e.g. "on the left".
func (p Position) Phrase() string { return positionPhrases[p] }

// Scene is what one synthetic image shows: Count copies of a coloured
// shape in one region of a light background.
type Scene struct {
	Shape    Shape
	Color    Color
	Position Position
	Count    int // 1 or more
}

// countWords spell counts; Describe uses "a" for one.
var countWords = [...]string{"", "one", "two", "three", "four"}

// MaxCount is the largest count Describe can spell.
const MaxCount = len(countWords) - 1

// Describe returns the caption of a scene, e.g. "a red circle on the left."
// or "two blue squares at the top.".
func Describe(s Scene) string {
	if s.Count <= 1 {
		return fmt.Sprintf("a %s %s %s.", s.Color, s.Shape, s.Position.Phrase())
	}
	return fmt.Sprintf("%s %s %s %s.", countWords[min(s.Count, MaxCount)], s.Color, s.Shape.Plural(), s.Position.Phrase())
}

// SceneSampler draws random scenes from the listed choices.
type SceneSampler struct {
	Shapes    []Shape
	Colors    []Color
	Positions []Position
	MaxCount  int // counts are drawn uniformly from 1..MaxCount (1 if unset)
}

// BasicSampler is the distribution of the generated dataset: one shape of
// three kinds in four colours, on the left or the right.
var BasicSampler = SceneSampler{
	Shapes:    []Shape{Circle, Square, Triangle},
	Colors:    []Color{Red, Green, Blue, Yellow},
	Positions: []Position{Left, Right},
	MaxCount:  1,
}

// Sample draws one scene.
func (s SceneSampler) Sample(rng *rand.Rand) Scene {
	sc := Scene{
		Shape:    s.Shapes[rng.IntN(len(s.Shapes))],
		Color:    s.Colors[rng.IntN(len(s.Colors))],
		Position: s.Positions[rng.IntN(len(s.Positions))],
		Count:    1,
	}
	if s.MaxCount > 1 {
		sc.Count = 1 + rng.IntN(min(s.MaxCount, MaxCount))
	}
	return sc
}

// RandomScene draws a scene from BasicSampler.
func RandomScene(rng *rand.Rand) Scene { return BasicSampler.Sample(rng) }

// Background is the light fill behind the shapes.
var Background = color.RGBA{240, 240, 230, 255}

// DrawScene renders a scene as a size×size image. Shapes are laid out on a
// grid inside their region, so counts up to four stay separate.
func DrawScene(s Scene, size int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	draw.Draw(img, img.Bounds(), image.NewUniform(Background), image.Point{}, draw.Src)
	region := regionOf(s.Position, size)
	n := max(s.Count, 1)
	cols := int(math.Ceil(math.Sqrt(float64(n))))
	rows := (n + cols - 1) / cols
	cw, ch := region.w/float64(cols), region.h/float64(rows)
	r := 0.38 * math.Min(cw, ch)
	for k := 0; k < n; k++ {
		cx := region.x + cw*(float64(k%cols)+0.5)
		cy := region.y + ch*(float64(k/cols)+0.5)
		fillShape(img, s.Shape, cx, cy, r, s.Color.RGBA())
	}
	return img
}

type rect struct{ x, y, w, h float64 }

func regionOf(p Position, size int) rect {
	f, half := float64(size), float64(size)/2
	switch p {
	case Left:
		return rect{0, 0, half, f}
	case Right:
		return rect{half, 0, half, f}
	case Top:
		return rect{0, 0, f, half}
	case Bottom:
		return rect{0, half, f, half}
	}
	return rect{f / 4, f / 4, half, half}
}

// fillShape paints every pixel whose centre lies inside the shape of
// radius r centred at (cx, cy).
func fillShape(img *image.RGBA, s Shape, cx, cy, r float64, c color.RGBA) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			if insideShape(s, dx, dy, r) {
				img.SetRGBA(x, y, c)
			}
		}
	}
}

func insideShape(s Shape, dx, dy, r float64) bool {
	switch s {
	case Circle:
		return dx*dx+dy*dy <= r*r
	case Square:
		h := 0.85 * r
		return math.Abs(dx) <= h && math.Abs(dy) <= h
	}
	// Upward triangle: apex at the top, base at 0.8r below the centre,
	// widening linearly from the apex.
	top, bottom := -r, 0.8*r
	if dy < top || dy > bottom {
		return false
	}
	return math.Abs(dx) <= r*(dy-top)/(bottom-top)
}
