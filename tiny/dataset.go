package tiny

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Turn is one message of a LLaVA conversation: From is "human" or "gpt".
type Turn struct {
	From  string `json:"from"`
	Value string `json:"value"`
}

// Sample is one entry of a LLaVA-format data file. Image is relative to the
// data file's directory and absent for text-only samples.
type Sample struct {
	ID            string `json:"id"`
	Image         string `json:"image,omitempty"`
	Conversations []Turn `json:"conversations"`
}

// Example is a sample before it is written: the image itself, and turns
// without the "<image>" marker, which WriteDataset adds.
type Example struct {
	ID    string
	Image image.Image // nil for a text-only example
	Turns []Turn      // alternating human, gpt, human, gpt, ...
}

// ImageMarker is the LLaVA placeholder for where the image goes.
const ImageMarker = "<image>"

// WriteDataset writes examples as dir/data.json, with each image saved as
// dir/images/NNN.png (NNN = the example's index) and referenced relative to
// dir. The "<image>\n" marker is prefixed to the first human turn of every
// example with an image.
func WriteDataset(dir string, examples []Example) error {
	if err := os.MkdirAll(filepath.Join(dir, ImageDir), 0o755); err != nil {
		return err
	}
	samples := make([]Sample, len(examples))
	for i, ex := range examples {
		s := Sample{ID: ex.ID, Conversations: append([]Turn(nil), ex.Turns...)}
		if ex.Image != nil {
			s.Image = fmt.Sprintf("%s/%03d.png", ImageDir, i)
			if err := writePNG(filepath.Join(dir, filepath.FromSlash(s.Image)), ex.Image); err != nil {
				return err
			}
			if len(s.Conversations) > 0 {
				s.Conversations[0].Value = ImageMarker + "\n" + s.Conversations[0].Value
			}
		}
		samples[i] = s
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<image>" readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(samples); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, DataFile), buf.Bytes(), 0o644)
}

func writePNG(path string, img image.Image) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// Question pools of the generated dataset.
var (
	describeQuestions = []string{"what is in the image?", "describe the image.", "what do you see?", "what is there in this picture?"}
	textOnly          = [][2]string{
		{"what colour is the sky?", "the sky is blue."},
		{"how many sides does a triangle have?", "a triangle has three sides."},
	}
)

// defaultSamples is the size of the generated dataset.
const defaultSamples = 24

// BuildExamples draws the generated dataset: n examples, the last two
// text-only; every fourth image example has two question/answer pairs.
func BuildExamples(rng *rand.Rand, n int) []Example {
	nText := min(len(textOnly), n)
	out := make([]Example, 0, n)
	for i := 0; i < n-nText; i++ {
		sc := RandomScene(rng)
		ex := Example{ID: fmt.Sprintf("tiny-%03d", i), Image: DrawScene(sc, ImageSize)}
		if i%4 == 3 {
			ex.Turns = multiTurn(rng, sc)
		} else {
			q := describeQuestions[rng.IntN(len(describeQuestions))]
			ex.Turns = []Turn{{"human", q}, {"gpt", Describe(sc)}}
		}
		out = append(out, ex)
	}
	for i := 0; i < nText; i++ {
		qa := textOnly[i]
		out = append(out, Example{ID: fmt.Sprintf("tiny-%03d", n-nText+i), Turns: []Turn{{"human", qa[0]}, {"gpt", qa[1]}}})
	}
	return out
}

// multiTurn asks about one attribute, then another.
func multiTurn(rng *rand.Rand, sc Scene) []Turn {
	if rng.IntN(2) == 0 {
		return []Turn{
			{"human", "what colour is the shape?"}, {"gpt", fmt.Sprintf("it is %s.", sc.Color)},
			{"human", "where is it?"}, {"gpt", fmt.Sprintf("it is %s.", sc.Position.Phrase())},
		}
	}
	return []Turn{
		{"human", "describe the image."}, {"gpt", Describe(sc)},
		{"human", "what shape is it?"}, {"gpt", fmt.Sprintf("it is a %s.", sc.Shape)},
	}
}
