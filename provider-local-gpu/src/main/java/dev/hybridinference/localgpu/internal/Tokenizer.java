package dev.hybridinference.localgpu.internal;

import dev.hybridinference.localgpu.GgufMetadata;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Text to token ids and back, built from a GGUF file's vocabulary: {@link SentencePieceTokenizer} for
 * {@code tokenizer.ggml.model = llama}, {@link BpeTokenizer} for {@code gpt2}. Thread-safe once built.
 * Internal.
 */
public abstract class Tokenizer {
    /** Token type of a control token such as {@code <s>} or {@code <|im_start|>}. */
    static final int CONTROL = 3;
    /** Token type of a user-defined token, matched literally. */
    static final int USER_DEFINED = 4;
    /** Token type of a byte token {@code <0xNN>}. */
    static final int BYTE = 6;

    final List<String> tokens;
    final int[] types;
    final Map<String, Integer> ids;
    final int bos;
    final int eos;
    final int eot;
    final boolean addBos;
    /** Control and user-defined tokens, longest first, for literal matching. */
    final List<String> specials;

    Tokenizer(GgufMetadata meta, int defaultBos, int defaultEos, boolean defaultAddBos) {
        this.tokens = meta.strings("tokenizer.ggml.tokens")
                .orElseThrow(() -> new IllegalArgumentException("tokenizer.ggml.tokens is missing"));
        this.types = new int[tokens.size()];
        List<Number> t = meta.numbers("tokenizer.ggml.token_type").orElse(List.of());
        for (int i = 0; i < types.length; i++) {
            types[i] = i < t.size() ? t.get(i).intValue() : 1;
        }
        this.ids = new HashMap<>(tokens.size() * 2);
        for (int i = 0; i < tokens.size(); i++) {
            ids.putIfAbsent(tokens.get(i), i);
        }
        this.bos =
                meta.integer("tokenizer.ggml.bos_token_id").map(Long::intValue).orElse(defaultBos);
        this.eos =
                meta.integer("tokenizer.ggml.eos_token_id").map(Long::intValue).orElse(defaultEos);
        this.eot =
                meta.integer("tokenizer.ggml.eot_token_id").map(Long::intValue).orElse(-1);
        this.addBos = meta.bool("tokenizer.ggml.add_bos_token").orElse(defaultAddBos);
        List<String> sp = new ArrayList<>();
        for (int i = 0; i < types.length; i++) {
            if ((types[i] == CONTROL || types[i] == USER_DEFINED)
                    && !tokens.get(i).isEmpty()) {
                sp.add(tokens.get(i));
            }
        }
        sp.sort((a, b) -> Integer.compare(b.length(), a.length()));
        this.specials = List.copyOf(sp);
    }

    /** The tokenizer the file's {@code tokenizer.ggml.model} names. */
    public static Tokenizer of(GgufMetadata meta) {
        String model = meta.string("tokenizer.ggml.model")
                .orElseThrow(() -> new IllegalArgumentException("tokenizer.ggml.model is missing"));
        switch (model) {
            case "llama":
                return new SentencePieceTokenizer(meta);
            case "gpt2":
                return new BpeTokenizer(meta);
            default:
                throw new IllegalArgumentException(
                        "tokenizer model \"" + model + "\" is not supported (expected llama or gpt2)");
        }
    }

    /** Vocabulary size. */
    public int size() {
        return tokens.size();
    }

    /** The beginning-of-sequence token, or -1. */
    public int bos() {
        return bos;
    }

    /** The end-of-sequence token, or -1. */
    public int eos() {
        return eos;
    }

    /** Whether generation should stop at {@code token} (EOS, end of turn, or another end token). */
    public boolean isEnd(int token) {
        return token == eos
                || token == eot
                || (token >= 0 && token < types.length && types[token] == CONTROL && isEndText(tokens.get(token)));
    }

    private static boolean isEndText(String t) {
        return t.equals("<|im_end|>")
                || t.equals("<|eot_id|>")
                || t.equals("<|end|>")
                || t.equals("<|endoftext|>")
                || t.equals("</s>");
    }

    /** Whether {@code add_bos_token} asks for a BOS at the start. */
    public boolean addsBos() {
        return addBos && bos >= 0;
    }

    /** The id of a token written literally, such as {@code <|im_start|>}, or -1. */
    public int id(String token) {
        Integer id = ids.get(token);
        return id == null ? -1 : id;
    }

    /**
     * Encodes {@code text}.
     *
     * @param addBos prepend the BOS token (when the vocabulary has one)
     * @param parseSpecial match control tokens written in the text (chat templates do); user text
     *     should not
     */
    public int[] encode(String text, boolean addBos, boolean parseSpecial) {
        List<Integer> out = new ArrayList<>();
        if (addBos && bos >= 0) {
            out.add(bos);
        }
        if (!parseSpecial || specials.isEmpty()) {
            encodePlain(text, out, true);
        } else {
            int start = 0;
            boolean atStart = true;
            int i = 0;
            while (i < text.length()) {
                String hit = null;
                for (String s : specials) {
                    if (text.startsWith(s, i)) {
                        hit = s;
                        break;
                    }
                }
                if (hit == null) {
                    i++;
                    continue;
                }
                if (i > start) {
                    encodePlain(text.substring(start, i), out, atStart);
                }
                out.add(ids.get(hit));
                i += hit.length();
                start = i;
                atStart = false;
            }
            if (start < text.length()) {
                encodePlain(text.substring(start), out, atStart);
            }
        }
        int[] a = new int[out.size()];
        for (int k = 0; k < a.length; k++) {
            a[k] = out.get(k);
        }
        return a;
    }

    /** Encodes text without special tokens; {@code atStart} is true for the first piece of a text. */
    abstract void encodePlain(String text, List<Integer> out, boolean atStart);

    /** The bytes a token stands for (control tokens stand for nothing). */
    public abstract byte[] bytes(int token);

    /** Decodes tokens to text, dropping control tokens. */
    public String decode(int[] tokens) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        for (int t : tokens) {
            byte[] b = bytes(t);
            out.write(b, 0, b.length);
        }
        return out.toString(java.nio.charset.StandardCharsets.UTF_8);
    }

    /** A decoder for a token stream that never splits a UTF-8 character between two pieces. */
    public StreamDecoder streamDecoder() {
        return new StreamDecoder(this);
    }

    /** Turns tokens into text pieces as they are generated, holding back incomplete UTF-8 sequences. */
    public static final class StreamDecoder {
        private final Tokenizer tokenizer;
        private final java.io.ByteArrayOutputStream pending = new java.io.ByteArrayOutputStream();

        StreamDecoder(Tokenizer tokenizer) {
            this.tokenizer = tokenizer;
        }

        /** The text that {@code token} completes; may be empty while a character is incomplete. */
        public String next(int token) {
            byte[] b = tokenizer.bytes(token);
            pending.write(b, 0, b.length);
            byte[] all = pending.toByteArray();
            int complete = completePrefix(all);
            String s = new String(all, 0, complete, java.nio.charset.StandardCharsets.UTF_8);
            pending.reset();
            pending.write(all, complete, all.length - complete);
            return s;
        }

        /** Whatever is still held back, decoded as is. */
        public String flush() {
            String s = pending.toString(java.nio.charset.StandardCharsets.UTF_8);
            pending.reset();
            return s;
        }

        private static int completePrefix(byte[] b) {
            int n = b.length;
            // Look back at most 3 bytes for the start of an unfinished multi-byte character.
            for (int back = 1; back <= Math.min(3, n); back++) {
                int c = b[n - back] & 0xFF;
                if ((c & 0xC0) == 0x80) {
                    continue;
                }
                int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
                return len > back ? n - back : n;
            }
            return n;
        }
    }
}
