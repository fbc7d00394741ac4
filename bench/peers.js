// face-api.js (@vladmandic/face-api on @tensorflow/tfjs-backend-wasm, one wasm thread per process)
// measured the way bench/peers.sh compares it with fedface's engine_bench, in the same run:
//   node peers.js descriptors N        -> descriptor faces/s over N 150x150 chips
//   node peers.js pipeline DIR ROUNDS  -> photos/s of detectAllFaces (tiny detector, input 416)
//                                        .withFaceLandmarks().withFaceDescriptors() over the
//                                        DIR/*.rgb photos (1920x1080 raw RGB, decoded by
//                                        engine_bench: face-api's figure excludes JPEG decoding)
// Prints one JSON line: {"rate": x, "cpu_ms_per_item": y, "items": n, "faces_per_photo": f}.
'use strict';
const fs = require('fs');
const path = require('path');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const wasm = require('@tensorflow/tfjs-backend-wasm');

const tf = faceapi.tf;
const modelDir = path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');

async function setup() {
  wasm.setThreadsCount(1);  // one core per process: the product's workers are single-threaded too
  await tf.setBackend('wasm');
  await tf.ready();
  await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);
  await faceapi.nets.tinyFaceDetector.loadFromDisk(modelDir);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
}

function cpuMs() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function descriptors(n) {
  const chips = [];
  for (let i = 0; i < Math.min(n, 8); ++i) chips.push(tf.randomUniform([150, 150, 3], 0, 255, 'int32'));
  for (let i = 0; i < 2; ++i) await faceapi.computeFaceDescriptor(chips[i % chips.length]);
  const cpu0 = cpuMs();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; ++i) await faceapi.computeFaceDescriptor(chips[i % chips.length]);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { rate: n / s, cpu_ms_per_item: (cpuMs() - cpu0) / n, items: n };
}

async function pipeline(dir, rounds) {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.rgb')).sort();
  const photos = files.map((f) => tf.tensor3d(new Uint8Array(fs.readFileSync(path.join(dir, f))),
    [1080, 1920, 3], 'int32'));
  const options = new faceapi.TinyFaceDetectorOptions({ inputSize: 416 });
  const run = (t) => faceapi.detectAllFaces(t, options).withFaceLandmarks().withFaceDescriptors();
  await run(photos[0]);  // warm-up
  let faces = 0;
  const cpu0 = cpuMs();
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; ++r) {
    for (const t of photos) faces += (await run(t)).length;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const items = rounds * photos.length;
  return { rate: items / s, cpu_ms_per_item: (cpuMs() - cpu0) / items, items,
    faces_per_photo: faces / items };
}

(async () => {
  await setup();
  const [mode, a, b] = process.argv.slice(2);
  const out = mode === 'descriptors' ? await descriptors(Number(a || 64))
    : await pipeline(a, Number(b || 2));
  out.backend = tf.getBackend();
  out.wasm_threads = wasm.getThreadsCount();
  out.tfjs = tf.version_core;
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(`peers.js: ${e.message}`);
  process.exit(1);
});
