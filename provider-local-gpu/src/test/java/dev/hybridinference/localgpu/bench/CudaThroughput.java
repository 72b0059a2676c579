package dev.hybridinference.localgpu.bench;

import dev.hybridinference.localgpu.CudaDevice;
import dev.hybridinference.localgpu.LocalRuntime;
import dev.hybridinference.localgpu.Precision;
import dev.hybridinference.localgpu.internal.GgufWriter;
import dev.hybridinference.localgpu.internal.NativeModel;
import dev.hybridinference.localgpu.internal.Sampler;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Decode and prefill tokens per second of the CUDA backend on generated llama models of about 1B parameters
 * (dim 2048, 18 layers, 16 heads over 4 KV heads, FFN 5632, vocabulary 32000: 0.94B), one per weight type,
 * and the share of the card's peak memory bandwidth that decoding reaches: the weight bytes a token reads
 * (every matrix but the embedding table, of which it reads one row) times tokens per second, over the
 * bandwidth from the card's memory clock and bus width. Not a test: {@code src/test/gpu/run.sh} runs it on a
 * GPU machine. Arguments: [types, default f16,q8_0,q4_k] [folder for the models, default a temporary one
 * deleted at the end; a model already in a given folder is used again, so that a second run, say with
 * {@code HYBRIDINFERENCE_CUDA_GRAPHS=0}, skips generating it] [prompt tokens, default 512] [decoded tokens,
 * default 128]. The models load in precision fast, the default, so that a run with
 * {@code HYBRIDINFERENCE_CUDA_INTEGER=1} measures the integer products.
 */
public final class CudaThroughput {
    private CudaThroughput() {}

    static final int DIM = 2048;
    static final int LAYERS = 18;
    static final int HEADS = 16;
    static final int KV_HEADS = 4;
    static final int FFN = 5632;
    static final int VOCAB = 32000;

    /** Seconds of decoding before each model's measurements (system property cudaThroughput.warmupSeconds). */
    static final double WARMUP_SECONDS = Double.parseDouble(System.getProperty("cudaThroughput.warmupSeconds", "2"));

    record Matrix(String name, int cols, int rows) {}

    public static void main(String[] args) throws Exception {
        String[] types = (args.length > 0 ? args[0] : "f16,q8_0,q4_k").split(",");
        boolean temporary = args.length < 2;
        Path dir = temporary ? Files.createTempDirectory("cuda-throughput") : Path.of(args[1]);
        int promptTokens = args.length > 2 ? Integer.parseInt(args[2]) : 512;
        int decodeTokens = args.length > 3 ? Integer.parseInt(args[3]) : 128;
        List<CudaDevice> devices = LocalRuntime.cudaDevices();
        if (devices.isEmpty()) {
            System.out.println(
                    "no CUDA device: " + LocalRuntime.cudaUnavailableReason().orElse("none seen"));
            return;
        }
        CudaDevice card = devices.get(0);
        double peak = NativeModel.cudaPeakBandwidth(0);
        System.out.printf(
                Locale.ROOT,
                "device %s, %.1f GiB, peak memory bandwidth %.0f GB/s%n",
                card.label(),
                card.totalBytes() / (double) (1L << 30),
                peak);
        System.out.println("decode@0: decoding from position 1 on (one-token prompt); decode@P: after the prompt of P"
                + " tokens; 'of peak': the weight bytes a token reads times tokens/s, over the peak bandwidth");
        System.out.printf(
                Locale.ROOT,
                "type   params  weights/token  load s  prefill tok/s  decode@0 tok/s  of peak  decode@%d tok/s  of peak%n",
                promptTokens);
        for (String t : types) {
            int type = typeOf(t.trim());
            Path file = dir.resolve("cuda-throughput-" + t.trim() + ".gguf");
            long t0 = System.nanoTime();
            if (!Files.exists(file)) {
                write(file, type, LAYERS);
            }
            long[] sizes = sizes(type, LAYERS);
            double genSeconds = (System.nanoTime() - t0) / 1e9;
            long t1 = System.nanoTime();
            try (NativeModel m = NativeModel.load(file, 1, Precision.FAST, 0)) {
                double loadSeconds = (System.nanoTime() - t1) / 1e9;
                int[] prompt = new int[promptTokens];
                for (int i = 0; i < promptTokens; i++) {
                    prompt[i] = (i * 7919 + 13) % VOCAB;
                }
                try (NativeModel.Session warm = m.newSession(promptTokens + decodeTokens)) {
                    warm.eval(java.util.Arrays.copyOf(prompt, 64), 0);
                    warm.eval(new int[] {1}, 64);
                }
                // Decoding for a while first: the card raises its clocks only after some time under load.
                long until = System.nanoTime() + (long) (WARMUP_SECONDS * 1e9);
                while (System.nanoTime() < until) {
                    try (NativeModel.Session warm = m.newSession(decodeTokens + 1)) {
                        decode(warm, warm.eval(new int[] {prompt[0]}, 0), 1, decodeTokens);
                    }
                }
                Decoded early;
                try (NativeModel.Session s = m.newSession(decodeTokens + 1)) {
                    early = decode(s, s.eval(new int[] {prompt[0]}, 0), 1, decodeTokens);
                }
                try (NativeModel.Session s = m.newSession(promptTokens + decodeTokens)) {
                    long p0 = System.nanoTime();
                    float[] logits = s.eval(prompt, 0);
                    double prefill = promptTokens / ((System.nanoTime() - p0) / 1e9);
                    Decoded late = decode(s, logits, promptTokens, decodeTokens);
                    System.out.printf(
                            Locale.ROOT,
                            "%-6s %5.2fB  %8.0f MiB  %6.1f  %13.0f  %14.1f  %6.1f%%  %16.1f  %6.1f%%   (tokens %08x; model made in %.0f s)%n",
                            t.trim(),
                            sizes[0] / 1e9,
                            sizes[1] / (double) (1 << 20),
                            loadSeconds,
                            prefill,
                            early.perSecond(),
                            100 * sizes[1] * early.perSecond() / 1e9 / peak,
                            late.perSecond(),
                            100 * sizes[1] * late.perSecond() / 1e9 / peak,
                            late.chosen(),
                            genSeconds);
                }
            } finally {
                if (temporary) {
                    Files.deleteIfExists(file);
                }
            }
        }
        if (temporary) {
            Files.deleteIfExists(dir);
        }
    }

    /**
     * Tokens per second of a greedy decoding, and a hash of the tokens it chose: runs with other settings should
     * choose the same.
     */
    record Decoded(double perSecond, int chosen) {}

    /** Greedy decoding of {@code tokens} tokens from position {@code pos}. */
    static Decoded decode(NativeModel.Session s, float[] logits, int pos, int tokens) {
        int hash = 1;
        long d0 = System.nanoTime();
        for (int i = 0; i < tokens; i++) {
            int next = Sampler.argmax(logits);
            hash = 31 * hash + next;
            logits = s.eval(new int[] {next}, pos + i);
        }
        return new Decoded(tokens / ((System.nanoTime() - d0) / 1e9), hash);
    }

    static int typeOf(String name) {
        switch (name.toLowerCase(Locale.ROOT)) {
            case "f32":
                return GgufWriter.F32;
            case "f16":
                return GgufWriter.F16;
            case "q8_0":
                return GgufWriter.Q8_0;
            case "q4_k":
                return GgufWriter.Q4_K;
            case "q6_k":
                return GgufWriter.Q6_K;
            default:
                throw new IllegalArgumentException("type must be f32, f16, q8_0, q4_k or q6_k, got " + name);
        }
    }

    /**
     * {parameters, weight bytes a decoded token reads} of the model {@link #write} writes: every matrix but the
     * embedding table, of which a token reads one row.
     */
    static long[] sizes(int type, int layers) {
        long params = 0;
        long perToken = 0;
        for (Matrix m : matrices(layers)) {
            params += (long) m.cols() * m.rows();
            if (!m.name().equals("token_embd.weight")) {
                perToken += (long) m.cols() / GgufWriter.blockElems(type) * GgufWriter.blockBytes(type) * m.rows();
            }
        }
        return new long[] {params, perToken};
    }

    static List<Matrix> matrices(int layers) {
        int hd = DIM / HEADS;
        List<Matrix> matrices = new ArrayList<>();
        matrices.add(new Matrix("token_embd.weight", DIM, VOCAB));
        for (int l = 0; l < layers; l++) {
            String b = "blk." + l + ".";
            matrices.add(new Matrix(b + "attn_q.weight", DIM, HEADS * hd));
            matrices.add(new Matrix(b + "attn_k.weight", DIM, KV_HEADS * hd));
            matrices.add(new Matrix(b + "attn_v.weight", DIM, KV_HEADS * hd));
            matrices.add(new Matrix(b + "attn_output.weight", HEADS * hd, DIM));
            matrices.add(new Matrix(b + "ffn_gate.weight", DIM, FFN));
            matrices.add(new Matrix(b + "ffn_up.weight", DIM, FFN));
            matrices.add(new Matrix(b + "ffn_down.weight", FFN, DIM));
        }
        matrices.add(new Matrix("output.weight", DIM, VOCAB));
        return matrices;
    }

    /**
     * Writes the model, every matrix of {@code type} (uniform values of the variance 1/fan-in), generated and
     * quantized on all cores, with {@code layers} blocks.
     */
    public static void write(Path file, int type, int layers) throws Exception {
        List<Matrix> matrices = matrices(layers);
        byte[][] encoded = new byte[matrices.size()][];
        IntStream.range(0, matrices.size()).parallel().forEach(i -> {
            Matrix m = matrices.get(i);
            SplittableRandom r = new SplittableRandom(1000 + i);
            float a = (float) Math.sqrt(3.0 / m.cols());
            float[] v = new float[Math.multiplyExact(m.cols(), m.rows())];
            for (int k = 0; k < v.length; k++) {
                v[k] = (float) ((r.nextDouble() * 2 - 1) * a);
            }
            encoded[i] = GgufWriter.quantize(type, v, m.cols());
        });
        GgufWriter w = new GgufWriter();
        w.put("general.architecture", "llama")
                .put("general.name", "cuda-throughput")
                .put("general.alignment", 32)
                .put("llama.context_length", 4096)
                .put("llama.embedding_length", DIM)
                .put("llama.block_count", layers)
                .put("llama.feed_forward_length", FFN)
                .put("llama.attention.head_count", HEADS)
                .put("llama.attention.head_count_kv", KV_HEADS)
                .put("llama.attention.layer_norm_rms_epsilon", 1e-5f)
                .put("llama.rope.freq_base", 10000f)
                .put("llama.rope.dimension_count", DIM / HEADS);
        float[] ones = new float[DIM];
        java.util.Arrays.fill(ones, 1.0f);
        for (int i = 0; i < matrices.size(); i++) {
            Matrix m = matrices.get(i);
            w.rawTensor(m.name(), type, new long[] {m.cols(), m.rows()}, encoded[i]);
            if (m.name().endsWith("attn_v.weight")) {
                w.tensor(m.name().replace("attn_v", "attn_norm"), GgufWriter.F32, new long[] {DIM}, ones);
            } else if (m.name().endsWith("attn_output.weight")) {
                w.tensor(m.name().replace("attn_output", "ffn_norm"), GgufWriter.F32, new long[] {DIM}, ones);
            }
        }
        w.tensor("output_norm.weight", GgufWriter.F32, new long[] {DIM}, ones);
        w.write(file);
    }
}
