package dev.hybridinference.localgpu.internal;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.ToIntFunction;

/**
 * Writes random-weight Llama-family GGUF models of any shape and weight type, with a small byte-level
 * BPE vocabulary and a ChatML template, so that tests and benchmarks need no downloaded model. Internal.
 */
public final class RandomModels {
    private RandomModels() {}

    /**
     * A model's shape.
     *
     * @param arch {@code llama} or {@code qwen2} (attention biases, NeoX RoPE)
     * @param dim embedding width
     * @param layers blocks
     * @param heads attention heads
     * @param kvHeads key/value heads
     * @param ffn feed-forward width
     * @param context trained context
     * @param vocab vocabulary size, at least 259
     * @param tiedOutput leave out {@code output.weight} (use the embeddings)
     */
    public record Shape(
            String arch,
            int dim,
            int layers,
            int heads,
            int kvHeads,
            int ffn,
            int context,
            int vocab,
            boolean tiedOutput) {}

    /**
     * Writes a model and returns each tensor's values as the file holds them (after quantization).
     *
     * @param type the type of every 2-D weight (1-D norms and biases stay F32)
     */
    public static Map<String, float[]> write(Path path, Shape s, int type, long seed) throws IOException {
        return write(path, s, type, seed, w -> {});
    }

    /**
     * Writes a model as {@link #write(Path, Shape, int, long)} does, after letting {@code edit} change the
     * writer: replace metadata or add tensors, as tests of hostile files do.
     */
    public static Map<String, float[]> write(Path path, Shape s, int type, long seed, Consumer<GgufWriter> edit)
            throws IOException {
        return write(path, s, name -> type, seed, edit);
    }

    /**
     * Writes a model as {@link #write(Path, Shape, int, long, Consumer)} does, with each 2-D weight's type
     * chosen by its tensor name ({@code blk.3.attn_v.weight}, {@code output.weight}), as mixed-type files
     * such as Q4_K_M hold them.
     */
    public static Map<String, float[]> write(
            Path path, Shape s, ToIntFunction<String> typeOf, long seed, Consumer<GgufWriter> edit) throws IOException {
        Random r = new Random(seed);
        GgufWriter w = new GgufWriter();
        String a = s.arch();
        int hd = s.dim() / s.heads();
        w.put("general.architecture", a)
                .put("general.name", "random-" + a + "-" + s.dim() + "x" + s.layers())
                .put("general.alignment", 32)
                .put(a + ".context_length", s.context())
                .put(a + ".embedding_length", s.dim())
                .put(a + ".block_count", s.layers())
                .put(a + ".feed_forward_length", s.ffn())
                .put(a + ".attention.head_count", s.heads())
                .put(a + ".attention.head_count_kv", s.kvHeads())
                .put(a + ".attention.layer_norm_rms_epsilon", 1e-5f)
                .put(a + ".rope.freq_base", 10000f)
                .put(a + ".rope.dimension_count", hd);
        vocabulary(w, s.vocab());
        Map<String, float[]> values = new LinkedHashMap<>();
        matrix(w, values, "token_embd.weight", typeOf, s.dim(), s.vocab(), 1.0f, r);
        for (int l = 0; l < s.layers(); l++) {
            String b = "blk." + l + ".";
            vector(w, values, b + "attn_norm.weight", s.dim(), 1.0f, 0.1f, r);
            matrix(w, values, b + "attn_q.weight", typeOf, s.dim(), s.heads() * hd, scale(s.dim()), r);
            matrix(w, values, b + "attn_k.weight", typeOf, s.dim(), s.kvHeads() * hd, scale(s.dim()), r);
            matrix(w, values, b + "attn_v.weight", typeOf, s.dim(), s.kvHeads() * hd, scale(s.dim()), r);
            if (a.equals("qwen2")) {
                vector(w, values, b + "attn_q.bias", s.heads() * hd, 0f, 0.1f, r);
                vector(w, values, b + "attn_k.bias", s.kvHeads() * hd, 0f, 0.1f, r);
                vector(w, values, b + "attn_v.bias", s.kvHeads() * hd, 0f, 0.1f, r);
            }
            matrix(w, values, b + "attn_output.weight", typeOf, s.heads() * hd, s.dim(), scale(s.heads() * hd), r);
            vector(w, values, b + "ffn_norm.weight", s.dim(), 1.0f, 0.1f, r);
            matrix(w, values, b + "ffn_gate.weight", typeOf, s.dim(), s.ffn(), scale(s.dim()), r);
            matrix(w, values, b + "ffn_up.weight", typeOf, s.dim(), s.ffn(), scale(s.dim()), r);
            matrix(w, values, b + "ffn_down.weight", typeOf, s.ffn(), s.dim(), scale(s.ffn()), r);
        }
        vector(w, values, "output_norm.weight", s.dim(), 1.0f, 0.1f, r);
        if (!s.tiedOutput()) {
            matrix(w, values, "output.weight", typeOf, s.dim(), s.vocab(), scale(s.dim()), r);
        }
        edit.accept(w);
        w.write(path);
        return values;
    }

    private static float scale(int fanIn) {
        return (float) (1.0 / Math.sqrt(fanIn));
    }

    private static void matrix(
            GgufWriter w,
            Map<String, float[]> values,
            String name,
            ToIntFunction<String> typeOf,
            int cols,
            int rows,
            float scale,
            Random r) {
        float[] v = new float[cols * rows];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (r.nextGaussian() * scale);
        }
        int type = typeOf.applyAsInt(name);
        byte[] encoded = GgufWriter.quantize(type, v, cols);
        w.rawTensor(name, type, new long[] {cols, rows}, encoded);
        values.put(name, GgufWriter.dequantize(type, encoded, v.length));
    }

    private static void vector(
            GgufWriter w, Map<String, float[]> values, String name, int n, float mean, float spread, Random r) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = mean + (float) (r.nextGaussian() * spread);
        }
        w.tensor(name, GgufWriter.F32, new long[] {n}, v);
        values.put(name, v);
    }

    /** 256 byte tokens, merges of common letter pairs up to {@code size - 3}, and three control tokens. */
    private static void vocabulary(GgufWriter w, int size) {
        if (size < 259) {
            throw new IllegalArgumentException("vocabulary must hold at least 259 tokens, got " + size);
        }
        List<String> tokens = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            tokens.add(String.valueOf(printable ? (char) b : (char) (256 + countBelow(b))));
        }
        String letters = "etaoinshrdlucmfwypvbgkqjxz";
        List<String> merges = new ArrayList<>();
        Set<String> seen = new LinkedHashSet<>(tokens);
        outer:
        for (int i = 0; i < letters.length(); i++) {
            for (String first : new String[] {"\u0120", String.valueOf(letters.charAt(i))}) {
                for (int j = 0; j < letters.length(); j++) {
                    if (tokens.size() >= size - 3) {
                        break outer;
                    }
                    String second = String.valueOf(letters.charAt(j));
                    String t = first + second;
                    if (seen.add(t)) {
                        tokens.add(t);
                        merges.add(first + " " + second);
                    }
                }
            }
        }
        tokens.add("<|endoftext|>");
        tokens.add("<|im_start|>");
        tokens.add("<|im_end|>");
        int[] types = new int[tokens.size()];
        java.util.Arrays.fill(types, 1);
        types[types.length - 1] = 3;
        types[types.length - 2] = 3;
        types[types.length - 3] = 3;
        w.put("tokenizer.ggml.model", "gpt2")
                .put("tokenizer.ggml.pre", "qwen2")
                .put("tokenizer.ggml.tokens", tokens)
                .put("tokenizer.ggml.token_type", types)
                .put("tokenizer.ggml.merges", merges)
                .put("tokenizer.ggml.eos_token_id", tokens.size() - 1)
                .put("tokenizer.ggml.bos_token_id", tokens.size() - 3)
                .put("tokenizer.ggml.add_bos_token", false)
                .put(
                        "tokenizer.chat_template",
                        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}");
    }

    private static int countBelow(int b) {
        int n = 0;
        for (int x = 0; x < b; x++) {
            boolean printable = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
            if (!printable) {
                n++;
            }
        }
        return n;
    }
}
