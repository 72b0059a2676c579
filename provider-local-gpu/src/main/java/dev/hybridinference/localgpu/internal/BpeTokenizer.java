package dev.hybridinference.localgpu.internal;

import dev.hybridinference.localgpu.GgufMetadata;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Byte-level BPE as llama.cpp does it for {@code tokenizer.ggml.model = gpt2} (Llama 3, Qwen2, SmolLM):
 * a regex pre-tokenizer chosen by {@code tokenizer.ggml.pre}, the GPT-2 byte-to-character table, then
 * merges applied lowest rank first. Unknown pre-tokenizer names fall back to GPT-2's regex.
 */
final class BpeTokenizer extends Tokenizer {
    private static final String CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
    private static final Pattern QWEN2 = Pattern.compile(
            CONTRACTIONS
                    + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern LLAMA3 = Pattern.compile(
            CONTRACTIONS
                    + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);
    private static final Pattern GPT2 = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final Map<Character, Integer> CHAR_TO_BYTE = new HashMap<>();

    static {
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            BYTE_TO_CHAR[b] = printable ? (char) b : (char) (256 + n++);
            CHAR_TO_BYTE.put(BYTE_TO_CHAR[b], b);
        }
    }

    private final Map<String, Integer> ranks = new HashMap<>();
    private final Pattern pre;
    private final boolean wholeWords;

    BpeTokenizer(GgufMetadata meta) {
        super(meta, -1, -1, false);
        List<String> merges = meta.strings("tokenizer.ggml.merges")
                .orElseThrow(
                        () -> new IllegalArgumentException("tokenizer.ggml.merges is missing (required for gpt2)"));
        for (int i = 0; i < merges.size(); i++) {
            ranks.putIfAbsent(merges.get(i), i);
        }
        String name = meta.string("tokenizer.ggml.pre").orElse("default");
        switch (name) {
            case "qwen2":
                pre = QWEN2;
                wholeWords = false;
                break;
            case "llama-bpe":
            case "llama3":
            case "smaug-bpe":
                pre = LLAMA3;
                wholeWords = true;
                break;
            default:
                pre = GPT2;
                wholeWords = false;
                break;
        }
    }

    @Override
    void encodePlain(String text, List<Integer> out, boolean atStart) {
        Matcher m = pre.matcher(text);
        while (m.find()) {
            StringBuilder mapped = new StringBuilder();
            for (byte b : m.group().getBytes(StandardCharsets.UTF_8)) {
                mapped.append(BYTE_TO_CHAR[b & 0xFF]);
            }
            String piece = mapped.toString();
            Integer whole = wholeWords ? ids.get(piece) : null;
            if (whole != null) {
                out.add(whole);
                continue;
            }
            bpe(piece, out);
        }
    }

    private void bpe(String piece, List<Integer> out) {
        List<String> parts = new ArrayList<>(piece.length());
        for (int i = 0; i < piece.length(); i++) {
            parts.add(String.valueOf(piece.charAt(i)));
        }
        while (parts.size() > 1) {
            int best = -1;
            int bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < parts.size(); i++) {
                Integer r = ranks.get(parts.get(i) + " " + parts.get(i + 1));
                if (r != null && r < bestRank) {
                    bestRank = r;
                    best = i;
                }
            }
            if (best < 0) {
                break;
            }
            parts.set(best, parts.get(best) + parts.get(best + 1));
            parts.remove(best + 1);
        }
        for (String p : parts) {
            Integer id = ids.get(p);
            if (id != null) {
                out.add(id);
            } else {
                for (int i = 0; i < p.length(); i++) {
                    Integer c = ids.get(String.valueOf(p.charAt(i)));
                    if (c != null) {
                        out.add(c);
                    }
                }
            }
        }
    }

    @Override
    public byte[] bytes(int token) {
        if (token < 0 || token >= tokens.size() || types[token] == CONTROL) {
            return new byte[0];
        }
        String t = tokens.get(token);
        if (types[token] == USER_DEFINED) {
            return t.getBytes(StandardCharsets.UTF_8);
        }
        byte[] out = new byte[t.length()];
        int n = 0;
        for (int i = 0; i < t.length(); i++) {
            Integer b = CHAR_TO_BYTE.get(t.charAt(i));
            if (b == null) {
                return t.getBytes(StandardCharsets.UTF_8);
            }
            out[n++] = (byte) (int) b;
        }
        return java.util.Arrays.copyOf(out, n);
    }
}
