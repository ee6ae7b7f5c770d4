package train

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"sort"
)

// gatherScores brings every rank's scored records to rank 0, in the input order (other
// ranks get nil). Gob carries the pieces' bytes exactly, valid UTF-8 or not.
func gatherScores(comm Comm, mine []scoredRecord) ([]scoredRecord, error) {
	if comm.Size() == 1 {
		return mine, nil
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(mine); err != nil {
		return nil, err
	}
	parts, err := comm.Gather(buf.Bytes())
	if err != nil || comm.Rank() != 0 {
		return nil, err
	}
	var all []scoredRecord
	for r, p := range parts {
		var theirs []scoredRecord
		if err := gob.NewDecoder(bytes.NewReader(p)).Decode(&theirs); err != nil {
			return nil, fmt.Errorf("the scores of rank %d: %w", r, err)
		}
		all = append(all, theirs...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Index < all[j].Index })
	return all, nil
}
