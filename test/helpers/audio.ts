/** Audio preparation for tests: resampling and encoding clips the way different clients send them. */
import { StreamingResampler } from "../../src/audio/resampler";

export function floatToPcm16(samples: Float32Array): Uint8Array {
  const out = new Uint8Array(samples.length * 2);
  const view = new DataView(out.buffer);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i] ?? 0));
    view.setInt16(i * 2, Math.round(s * 32767), true);
  }
  return out;
}

/** G.711 µ-law encoding (the standard's segment/quantisation rule, bias 0x84). */
export function floatToMulaw(samples: Float32Array): Uint8Array {
  const out = new Uint8Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    let pcm = Math.round(Math.max(-1, Math.min(1, samples[i] ?? 0)) * 32767);
    const sign = pcm < 0 ? 0x80 : 0;
    if (pcm < 0) pcm = -pcm;
    pcm = Math.min(pcm, 32635) + 0x84;
    let exponent = 7;
    for (let mask = 0x4000; (pcm & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
    const mantissa = (pcm >> (exponent + 3)) & 0x0f;
    out[i] = ~(sign | (exponent << 4) | mantissa) & 0xff;
  }
  return out;
}

/**
 * G.711 A-law compression written from the standard (sign, then the segment whose range holds
 * the 13-bit magnitude, then 4 bits of step), independent of the decoder's table.
 */
export function alawCompress(sample: number): number {
  const sign = sample >= 0 ? 0x80 : 0;
  let magnitude = Math.min(sample >= 0 ? sample : -sample - 1, 32767) >> 3; // 12-bit
  let segment = 0;
  while (magnitude >= 32 && segment < 7) {
    magnitude >>= 1;
    segment++;
  }
  const step = segment === 0 ? magnitude >> 1 : (magnitude >> 1) & 0x0f;
  return (sign | (segment << 4) | step) ^ 0x55;
}

/** G.711 A-law codes of float samples (rounded to 16 bits first, as floatToPcm16 does). */
export function floatToAlaw(samples: Float32Array): Uint8Array {
  return Uint8Array.from(samples, (x) =>
    alawCompress(Math.round(Math.max(-1, Math.min(1, x)) * 32767)),
  );
}

/** 32-bit little-endian floats: `encoding=linear32`'s wire format. */
export function floatToFloat32(samples: Float32Array): Uint8Array {
  const out = new Uint8Array(samples.length * 4);
  const view = new DataView(out.buffer);
  samples.forEach((s, i) => {
    view.setFloat32(i * 4, s, true);
  });
  return out;
}

export function resample(samples: Float32Array, from: number, to: number): Float32Array {
  if (from === to) return samples;
  const resampler = new StreamingResampler(from, to);
  const head = resampler.process(samples);
  const tail = resampler.flush();
  const out = new Float32Array(head.length + tail.length);
  out.set(head, 0);
  out.set(tail, head.length);
  return out;
}
