// Package demo is calft's main job on an embedded default: a tiny VLM, a synthetic
// visual task with label noise, the ce baseline and cal trained through the same
// `calft train` code, and an honest comparison on held-out images.
package demo

import (
	"math/rand/v2"
	"path/filepath"

	"github.com/calft/calft/tiny"
)

// The task: describe one drawn shape. Its colour, shape and position words are
// determined by the image; "a", "on the", "." are predictable from the text alone.
var sampler = tiny.SceneSampler{
	Shapes:    []tiny.Shape{tiny.Circle, tiny.Square, tiny.Triangle},
	Colors:    []tiny.Color{tiny.Red, tiny.Green, tiny.Blue, tiny.Yellow},
	Positions: []tiny.Position{tiny.Left, tiny.Right},
	MaxCount:  1,
}

// question is asked of every image.
const question = "what do you see?"

// item is one task sample with the truth behind its (possibly noisy) caption.
type item struct {
	Scene tiny.Scene
	Label tiny.Scene // what the caption says: Scene, or Scene with a wrong colour
	Noisy bool
}

// makeItems draws n scenes; a fraction `noise` of captions name a wrong colour, as
// real caption data contradicts its images now and then.
func makeItems(rng *rand.Rand, n int, noise float64) []item {
	out := make([]item, n)
	for i := range out {
		sc := sampler.Sample(rng)
		it := item{Scene: sc, Label: sc}
		if rng.Float64() < noise {
			for it.Label.Color == sc.Color {
				it.Label.Color = sampler.Colors[rng.IntN(len(sampler.Colors))]
			}
			it.Noisy = true
		}
		out[i] = it
	}
	return out
}

// writeItems writes items as a LLaVA dataset in dir (data.json, images/NNN.png).
func writeItems(dir string, prefix string, items []item) error {
	ex := make([]tiny.Example, len(items))
	for i, it := range items {
		ex[i] = tiny.Example{
			ID:    prefix + "-" + itoa3(i),
			Image: tiny.DrawScene(it.Scene, tiny.ImageSize),
			Turns: []tiny.Turn{{From: "human", Value: question}, {From: "gpt", Value: tiny.Describe(it.Label)}},
		}
	}
	return tiny.WriteDataset(dir, ex)
}

func itoa3(i int) string {
	b := []byte{'0', '0', '0'}
	for k := 2; k >= 0 && i > 0; k-- {
		b[k] = byte('0' + i%10)
		i /= 10
	}
	return string(b)
}

func imagePath(dir string, i int) string {
	return filepath.Join(dir, tiny.ImageDir, itoa3(i)+".png")
}

// Corruption is one training caption the demo corrupted: the ground truth its audit is
// measured against (task/train/corrupted.json).
type Corruption struct {
	ID         string `json:"id"`
	Record     int    `json:"record"` // 1-based position in data.json
	Caption    string `json:"caption"`
	ImageShows string `json:"image_shows"`
}

// corruptions lists the noisy items, in dataset order.
func corruptions(prefix string, items []item) []Corruption {
	out := []Corruption{}
	for i, it := range items {
		if it.Noisy {
			out = append(out, Corruption{ID: prefix + "-" + itoa3(i), Record: i + 1,
				Caption: tiny.Describe(it.Label), ImageShows: tiny.Describe(it.Scene)})
		}
	}
	return out
}
