package audio

import (
	"fmt"
	"math"
)

// Resampler converts interleaved float32 PCM from one sample rate to another with a band-limited
// polyphase windowed-sinc filter (Kaiser window). It is streaming: input may come in blocks of any
// size and the output is the same as for one long block (history is kept across calls). After the
// first calls with the largest block size it allocates nothing.
//
// The filter's cutoff is 0.9 × min(in, out) / 2; it has TapsPerPhase taps per output sample when
// upsampling and proportionally more when downsampling (so the transition band stays as narrow
// relative to the output rate). Its delay is Delay() output samples.
type Resampler struct {
	inRate, outRate int
	channels        int
	up, down        int       // out/in = up/down, reduced
	taps            int       // taps per phase (input samples per output sample)
	coef            []float32 // up phases × taps, each phase reversed for a forward dot product
	hist            []float32 // interleaved input: taps-1 samples of history, then new input
	idx             int       // input index (in frames, into hist) of the next output's newest tap
	phase           int       // 0..up-1
	bypass          bool
}

// TapsPerPhase is the resampler's filter length per polyphase branch when upsampling.
const TapsPerPhase = 32

// kaiserBeta sets the stopband attenuation (about 65 dB) of the resampler's window.
const kaiserBeta = 6.5

// NewResampler makes a resampler from inRate to outRate Hz for 1 or 2 interleaved channels.
func NewResampler(inRate, outRate, channels int) (*Resampler, error) {
	if inRate <= 0 || outRate <= 0 || inRate > 384000 || outRate > 384000 || channels < 1 || channels > 2 {
		return nil, fmt.Errorf("%w: %d Hz -> %d Hz, %d channels", ErrInvalidRate, inRate, outRate, channels)
	}
	g := gcd(inRate, outRate)
	r := &Resampler{inRate: inRate, outRate: outRate, channels: channels, up: outRate / g, down: inRate / g}
	if r.up == 1 && r.down == 1 {
		r.bypass = true
		return r, nil
	}
	if r.up > 4096 {
		return nil, fmt.Errorf("%w: %d Hz -> %d Hz needs %d filter phases", ErrInvalidRate, inRate, outRate, r.up)
	}
	r.taps = TapsPerPhase
	if inRate > outRate {
		r.taps = (TapsPerPhase*inRate + outRate - 1) / outRate
	}
	r.design()
	r.Reset()
	return r, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// design fills coef with the polyphase decomposition of a Kaiser-windowed sinc low-pass filter
// running at up×inRate.
func (r *Resampler) design() {
	n := r.taps * r.up
	// Cutoff as a fraction of the upsampled rate's Nyquist frequency.
	fc := 0.9 * float64(min(r.inRate, r.outRate)) / float64(r.inRate*r.up)
	center := float64(n-1) / 2
	i0b := besselI0(kaiserBeta)
	proto := make([]float64, n)
	for i := range proto {
		x := float64(i) - center
		var s float64
		if x == 0 {
			s = fc
		} else {
			s = math.Sin(math.Pi*fc*x) / (math.Pi * x)
		}
		t := 2*float64(i)/float64(n-1) - 1
		w := besselI0(kaiserBeta*math.Sqrt(max(0, 1-t*t))) / i0b
		proto[i] = s * w * float64(r.up)
	}
	// Normalise each phase to unity DC gain so no phase is louder than another (no tonal ripple).
	r.coef = make([]float32, n)
	for p := range r.up {
		var sum float64
		for j := range r.taps {
			sum += proto[p+j*r.up]
		}
		for j := range r.taps {
			// Tap j multiplies input x[idx-j]; store reversed so coef[p*taps+k] multiplies hist[idx-taps+1+k].
			r.coef[p*r.taps+r.taps-1-j] = float32(proto[p+j*r.up] / sum)
		}
	}
}

func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

// Reset forgets the history (as at construction).
func (r *Resampler) Reset() {
	if r.bypass {
		return
	}
	h := (r.taps - 1) * r.channels
	if cap(r.hist) < h {
		r.hist = make([]float32, h, h+4096*r.channels)
	}
	r.hist = r.hist[:h]
	clear(r.hist)
	r.idx = r.taps - 1
	r.phase = 0
}

// Delay is the resampler's group delay in output samples: output sample k corresponds to input time
// (k - Delay()) × inRate/outRate.
func (r *Resampler) Delay() float64 {
	if r.bypass {
		return 0
	}
	return float64(r.taps*r.up-1) / 2 / float64(r.down)
}

// OutputLen is an upper bound of the output samples per channel for n input samples per channel.
func (r *Resampler) OutputLen(n int) int {
	if r.bypass {
		return n
	}
	return n*r.up/r.down + 2
}

// Process resamples in (interleaved, len a multiple of the channel count) and appends the output to
// dst, returning it.
func (r *Resampler) Process(dst, in []float32) []float32 {
	if r.bypass {
		return append(dst, in...)
	}
	r.hist = append(r.hist, in...)
	ch := r.channels
	frames := len(r.hist) / ch
	taps, up, down := r.taps, r.up, r.down
	idx, phase := r.idx, r.phase
	if ch == 1 {
		for idx < frames {
			c := r.coef[phase*taps : phase*taps+taps]
			x := r.hist[idx-taps+1 : idx+1]
			x = x[:len(c)]
			var s0, s1, s2, s3 float32
			k := 0
			for ; k+4 <= len(c); k += 4 {
				s0 += c[k] * x[k]
				s1 += c[k+1] * x[k+1]
				s2 += c[k+2] * x[k+2]
				s3 += c[k+3] * x[k+3]
			}
			for ; k < len(c); k++ {
				s0 += c[k] * x[k]
			}
			dst = append(dst, (s0+s1)+(s2+s3))
			phase += down
			idx += phase / up
			phase %= up
		}
	} else {
		for idx < frames {
			c := r.coef[phase*taps : phase*taps+taps]
			x := r.hist[(idx-taps+1)*2 : (idx+1)*2]
			x = x[:2*len(c)]
			var l0, l1, r0, r1 float32
			k := 0
			for ; k+2 <= len(c); k += 2 {
				l0 += c[k] * x[2*k]
				r0 += c[k] * x[2*k+1]
				l1 += c[k+1] * x[2*k+2]
				r1 += c[k+1] * x[2*k+3]
			}
			for ; k < len(c); k++ {
				l0 += c[k] * x[2*k]
				r0 += c[k] * x[2*k+1]
			}
			dst = append(dst, l0+l1, r0+r1)
			phase += down
			idx += phase / up
			phase %= up
		}
	}
	// Keep the last taps-1 frames before the next output's newest tap.
	keep := idx - (taps - 1)
	if keep > frames {
		keep = frames // the next output needs input not yet seen: drop everything up to it
	}
	n := copy(r.hist, r.hist[keep*ch:])
	r.hist = r.hist[:n]
	r.idx = idx - keep
	r.phase = phase
	return dst
}
