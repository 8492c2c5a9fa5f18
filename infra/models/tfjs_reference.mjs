// Run the NanoDet TensorFlow.js graph model in its original runtime and save its raw
// outputs, so that the PyTorch port can be checked against them.
//
// Pure-JavaScript TensorFlow.js (CPU backend, no native binaries) is used from a
// folder given on the command line; install it once with
//   mkdir -p /tmp/tfjsref && cd /tmp/tfjsref && npm init -y && npm install \
//     @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-converter@4.22.0 \
//     @tensorflow/tfjs-backend-cpu@4.22.0
// Normally driven by `python -m infra.models.nanodet_reference`, which writes the
// images as raw RGB and packs what this script writes into test fixtures.
//
// Usage: node tfjs_reference.mjs TFJS_DIR MODEL_JSON WORK_DIR
//   WORK_DIR/images.json: [{"name": ..., "width": W, "height": H}, ...] with
//   WORK_DIR/<name>.rgb holding H*W*3 bytes each. For every image this writes
//   WORK_DIR/<name>.input.f32 (the preprocessed 1x3x416x416 input) and
//   WORK_DIR/<name>.<output>.f32 for each model output, plus WORK_DIR/outputs.json.
// Preprocessing is what @vladmandic/human 3.x does in src/object/nanodet.ts:
// bilinear resize to 416x416 (TensorFlow.js defaults: no corner alignment, no half
// pixel centres), divide by 255, NHWC -> NCHW.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [tfjsDir, modelJson, workDir] = process.argv.slice(2);
if (!workDir) {
  console.error('usage: node tfjs_reference.mjs TFJS_DIR MODEL_JSON WORK_DIR');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(tfjsDir), 'package.json'));
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const converter = require('@tensorflow/tfjs-converter');

const INPUT_SIZE = 416;

function fileHandler(jsonPath) {
  // A minimal tf.io.IOHandler reading the model and its shards from disk.
  return {
    load: async () => {
      const model = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
      const dir = path.dirname(jsonPath);
      const weightSpecs = [];
      const buffers = [];
      for (const group of model.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const shard of group.paths) buffers.push(fs.readFileSync(path.join(dir, shard)));
      }
      const all = Buffer.concat(buffers);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
      return {
        modelTopology: model.modelTopology,
        format: model.format,
        generatedBy: model.generatedBy,
        convertedBy: model.convertedBy,
        signature: model.signature,
        weightSpecs,
        weightData,
      };
    },
  };
}

await tf.setBackend('cpu');
const model = await converter.loadGraphModel(fileHandler(path.resolve(modelJson)));
const outputNames = Object.values(model.signature.outputs).map((o) => o.name).sort();
const images = JSON.parse(fs.readFileSync(path.join(workDir, 'images.json'), 'utf8'));
const written = {};
for (const image of images) {
  const bytes = fs.readFileSync(path.join(workDir, `${image.name}.rgb`));
  const rgb = tf.tensor4d(Float32Array.from(bytes), [1, image.height, image.width, 3]);
  const resized = tf.image.resizeBilinear(rgb, [INPUT_SIZE, INPUT_SIZE], false);
  const input = tf.transpose(tf.div(resized, 255), [0, 3, 1, 2]);
  const outputs = model.execute(input, outputNames);
  const save = (suffix, tensor) => {
    const data = tensor.dataSync();
    fs.writeFileSync(path.join(workDir, `${image.name}.${suffix}.f32`),
      Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  };
  save('input', input);
  written[image.name] = {};
  outputNames.forEach((name, k) => {
    const key = name.replace(':0', '');
    save(key, outputs[k]);
    written[image.name][key] = outputs[k].shape;
  });
  tf.dispose([rgb, resized, input, ...outputs]);
  console.log(`${image.name}: ran NanoDet outputs=${outputNames.length}`);
}
fs.writeFileSync(path.join(workDir, 'outputs.json'), JSON.stringify(written));
