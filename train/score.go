package train

import (
	"fmt"

	"github.com/calft/calft/cal"
	"github.com/calft/calft/data"
	"github.com/calft/calft/llava"
)

// TokenScore is the CAL view of one supervised token.
type TokenScore struct {
	ID         string  `json:"id"`
	Pos        int     `json:"pos"`   // row of the target token in the sample's sequence
	Token      int32   `json:"token"` // target token id
	Piece      string  `json:"piece"`
	LogitImg   float64 `json:"logit_img"`
	LogitNoImg float64 `json:"logit_noimg"`
	Delta      float64 `json:"delta"`
	Weight     float64 `json:"weight"`
}

// Score runs the image-present and image-absent passes over one sample and returns Δ
// and the CAL weight of every supervised token. adapter may be nil.
func Score(env *Env, ad llava.Adapter, s *data.Sample, opt cal.Options) ([]TokenScore, error) {
	seq, err := env.Sequence(s)
	if err != nil {
		return nil, err
	}
	b := &llava.Batch{Seqs: []llava.Sequence{seq}}
	rows, targets, _ := s.Scored(0, 0)
	if len(rows) == 0 {
		return nil, nil
	}
	dec := &llava.Decoder{HP: env.Model.HP, W: &env.Model.W, Adapter: ad}
	sg, err := NewStepGraph(env.Backend, dec, nil, Shape{Rows: b.Rows(), Scored: len(rows), Obj: cal.CAL, Hidden: HiddenFor(b), Kept: KeptFor(b)}, opt)
	if err != nil {
		return nil, err
	}
	defer sg.Close()
	if _, err := sg.Run(b, rows, targets); err != nil {
		return nil, fmt.Errorf("sample %s: %w", s.ID, err)
	}
	zi, zn := sg.Loss.ZImg.F32(), sg.Loss.ZNoImg.F32()
	delta, w := sg.Loss.Delta.F32(), sg.Loss.Weight.F32()
	out := make([]TokenScore, len(rows))
	for i, r := range rows {
		piece, err := env.Vocab.TokenToPiece(targets[i].Token, true)
		if err != nil {
			return nil, err
		}
		out[i] = TokenScore{
			ID: s.ID, Pos: int(r) + 1, Token: targets[i].Token, Piece: piece,
			LogitImg: float64(zi[i]), LogitNoImg: float64(zn[i]), Delta: float64(delta[i]), Weight: float64(w[i]),
		}
	}
	return out, nil
}
