package realollama

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
)

// The tiny model: a llama-architecture transformer small enough to load in a fraction of
// a second on a CPU (about 470 KB of F32 weights), with a byte-level BPE vocabulary so
// that any text tokenizes and any output detokenizes.
const (
	tinyEmbd   = 64
	tinyLayers = 2
	tinyHeads  = 4
	tinyFF     = 128
	tinyCtx    = 4096
)

// Its weights are random except for one steering dimension: every token embedding
// carries a constant 1 in dimension 0, which the small random layers barely disturb, so
// the output weights' dimension 0 sets each token's logit almost alone. Random rows give
// near-uniform sampling (the model's choice among what a grammar allows is free, which
// the constrained-mode tests want); whitespace is pushed down and the quote pushed up,
// so grammar-constrained JSON does not spend hundreds of tokens on indentation and
// strings close after a few characters. The end token is left alone, so free text runs to
// num_predict (long streams for the tests that need one). Text remains noise; only
// speed is steered.
const (
	steerWhitespace = -1.5
	steerQuote      = 0.5
)

// GGUF value types used here.
const (
	ggufU32   = 4
	ggufI32   = 5
	ggufF32   = 6
	ggufBool  = 7
	ggufStr   = 8
	ggufArray = 9
)

const ggufAlign = 32

// TinyVocabulary is the model's token list: the 256 bytes in GPT-2's printable byte
// encoding, a few merges, and the llama-3 style special tokens its template uses.
func TinyVocabulary() (tokens []string, types []int32, merges []string) {
	tokens = byteTokens()
	for _, m := range [][2]string{{"h", "e"}, {"l", "l"}, {"o", "Ġ"}, {"t", "h"}, {"i", "n"}, {"e", "r"}, {"a", "n"}, {"r", "e"}} {
		tokens = append(tokens, m[0]+m[1])
		merges = append(merges, m[0]+" "+m[1])
	}
	for range tokens {
		types = append(types, 1) // normal
	}
	for _, s := range tinySpecials {
		tokens = append(tokens, s)
		types = append(types, 3) // control
	}
	return tokens, types, merges
}

var tinySpecials = []string{"<|begin_of_text|>", "<|end_of_text|>", "<|im_start|>", "<|im_end|>"}

// byteTokens is GPT-2's byte-to-unicode table: every byte as a printable token.
func byteTokens() []string {
	var bs []int
	for _, r := range [][2]int{{'!', '~'}, {0xA1, 0xAC}, {0xAE, 0xFF}} {
		for b := r[0]; b <= r[1]; b++ {
			bs = append(bs, b)
		}
	}
	printable := map[int]rune{}
	for _, b := range bs {
		printable[b] = rune(b)
	}
	n := 0
	for b := range 256 {
		if _, ok := printable[b]; !ok {
			printable[b] = rune(256 + n)
			n++
		}
	}
	out := make([]string, 256)
	for b := range 256 {
		out[b] = string(printable[b])
	}
	return out
}

// WriteTinyGGUF writes the tiny model to path. The same seed gives the same bytes.
func WriteTinyGGUF(path string, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<16)
	if err := writeTinyGGUF(w, seed); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type tensor struct {
	name string
	dims []uint64 // ggml order: fastest-varying first
	data []float32
}

func writeTinyGGUF(w io.Writer, seed uint64) error {
	tokens, types, merges := TinyVocabulary()
	nVocab := len(tokens)
	bos, eos := index(tokens, "<|begin_of_text|>"), index(tokens, "<|im_end|>")
	g := &ggufWriter{w: w}

	meta := []func(){
		func() { g.kvString("general.architecture", "llama") },
		func() { g.kvString("general.name", "docket-tiny") },
		func() { g.kvU32("general.file_type", 0) }, // all F32
		func() { g.kvU32("llama.context_length", tinyCtx) },
		func() { g.kvU32("llama.embedding_length", tinyEmbd) },
		func() { g.kvU32("llama.block_count", tinyLayers) },
		func() { g.kvU32("llama.feed_forward_length", tinyFF) },
		func() { g.kvU32("llama.attention.head_count", tinyHeads) },
		func() { g.kvU32("llama.attention.head_count_kv", tinyHeads) },
		func() { g.kvF32("llama.attention.layer_norm_rms_epsilon", 1e-5) },
		func() { g.kvU32("llama.rope.dimension_count", tinyEmbd/tinyHeads) },
		func() { g.kvF32("llama.rope.freq_base", 10000) },
		func() { g.kvU32("llama.vocab_size", uint32(nVocab)) },
		func() { g.kvString("tokenizer.ggml.model", "gpt2") },
		func() { g.kvString("tokenizer.ggml.pre", "llama-bpe") },
		func() { g.kvStrings("tokenizer.ggml.tokens", tokens) },
		func() { g.kvI32s("tokenizer.ggml.token_type", types) },
		func() { g.kvStrings("tokenizer.ggml.merges", merges) },
		func() { g.kvU32("tokenizer.ggml.bos_token_id", uint32(bos)) },
		func() { g.kvU32("tokenizer.ggml.eos_token_id", uint32(eos)) },
		func() { g.kvBool("tokenizer.ggml.add_bos_token", true) },
	}

	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	gauss := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rnd.NormFloat64() * 0.02)
		}
		return v
	}
	ones := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	embd := gauss(tinyEmbd * nVocab)
	out := gauss(tinyEmbd * nVocab)
	for t := range nVocab {
		embd[t*tinyEmbd] = 1
		switch {
		case tokens[t] == "\"":
			out[t*tinyEmbd] = steerQuote
		case isWhitespaceToken(tokens[t]):
			out[t*tinyEmbd] = steerWhitespace
		}
	}
	tensors := []tensor{
		{"token_embd.weight", []uint64{tinyEmbd, uint64(nVocab)}, embd},
		{"output_norm.weight", []uint64{tinyEmbd}, ones(tinyEmbd)},
		{"output.weight", []uint64{tinyEmbd, uint64(nVocab)}, out},
	}
	for i := range tinyLayers {
		p := fmt.Sprintf("blk.%d.", i)
		sq := []uint64{tinyEmbd, tinyEmbd}
		tensors = append(tensors,
			tensor{p + "attn_norm.weight", []uint64{tinyEmbd}, ones(tinyEmbd)},
			tensor{p + "attn_q.weight", sq, gauss(tinyEmbd * tinyEmbd)},
			tensor{p + "attn_k.weight", sq, gauss(tinyEmbd * tinyEmbd)},
			tensor{p + "attn_v.weight", sq, gauss(tinyEmbd * tinyEmbd)},
			tensor{p + "attn_output.weight", sq, gauss(tinyEmbd * tinyEmbd)},
			tensor{p + "ffn_norm.weight", []uint64{tinyEmbd}, ones(tinyEmbd)},
			tensor{p + "ffn_gate.weight", []uint64{tinyEmbd, tinyFF}, gauss(tinyEmbd * tinyFF)},
			tensor{p + "ffn_up.weight", []uint64{tinyEmbd, tinyFF}, gauss(tinyEmbd * tinyFF)},
			tensor{p + "ffn_down.weight", []uint64{tinyFF, tinyEmbd}, gauss(tinyFF * tinyEmbd)},
		)
	}

	g.raw([]byte("GGUF"))
	g.u32(3) // version
	g.u64(uint64(len(tensors)))
	g.u64(uint64(len(meta)))
	for _, kv := range meta {
		kv()
	}
	var offset uint64
	for _, t := range tensors {
		g.str(t.name)
		g.u32(uint32(len(t.dims)))
		for _, d := range t.dims {
			g.u64(d)
		}
		g.u32(0) // F32
		g.u64(offset)
		offset += padded(uint64(len(t.data)) * 4)
	}
	g.pad()
	for _, t := range tensors {
		for _, v := range t.data {
			g.u32(math.Float32bits(v))
		}
		g.pad()
	}
	return g.err
}

// isWhitespaceToken reports tokens that decode to whitespace only (the byte encoding
// maps bytes ≤ 0x20 to U+0100 and up: Ġ is a space, Ċ a newline, ĉ a tab).
func isWhitespaceToken(tok string) bool {
	return tok != "" && strings.Trim(tok, "ĠĊĉč") == ""
}

func padded(n uint64) uint64 { return (n + ggufAlign - 1) / ggufAlign * ggufAlign }

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	panic("realollama: token " + s + " missing from the vocabulary")
}

// ggufWriter writes little-endian GGUF fields, keeping the first error.
type ggufWriter struct {
	w   io.Writer
	n   uint64
	err error
}

func (g *ggufWriter) raw(b []byte) {
	if g.err != nil {
		return
	}
	var n int
	n, g.err = g.w.Write(b)
	g.n += uint64(n)
}

func (g *ggufWriter) u32(v uint32) { g.raw(binary.LittleEndian.AppendUint32(nil, v)) }
func (g *ggufWriter) u64(v uint64) { g.raw(binary.LittleEndian.AppendUint64(nil, v)) }

func (g *ggufWriter) str(s string) {
	g.u64(uint64(len(s)))
	g.raw([]byte(s))
}

func (g *ggufWriter) pad() { g.raw(make([]byte, padded(g.n)-g.n)) }

func (g *ggufWriter) key(k string, typ uint32) {
	g.str(k)
	g.u32(typ)
}

func (g *ggufWriter) kvString(k, v string) { g.key(k, ggufStr); g.str(v) }
func (g *ggufWriter) kvU32(k string, v uint32) {
	g.key(k, ggufU32)
	g.u32(v)
}
func (g *ggufWriter) kvF32(k string, v float32) { g.key(k, ggufF32); g.u32(math.Float32bits(v)) }

func (g *ggufWriter) kvBool(k string, v bool) {
	g.key(k, ggufBool)
	if v {
		g.raw([]byte{1})
	} else {
		g.raw([]byte{0})
	}
}

func (g *ggufWriter) kvStrings(k string, vs []string) {
	g.key(k, ggufArray)
	g.u32(ggufStr)
	g.u64(uint64(len(vs)))
	for _, v := range vs {
		g.str(v)
	}
}

func (g *ggufWriter) kvI32s(k string, vs []int32) {
	g.key(k, ggufArray)
	g.u32(ggufI32)
	g.u64(uint64(len(vs)))
	for _, v := range vs {
		g.u32(uint32(v))
	}
}
