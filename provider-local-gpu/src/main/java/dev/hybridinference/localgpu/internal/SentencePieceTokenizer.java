package dev.hybridinference.localgpu.internal;

import dev.hybridinference.localgpu.GgufMetadata;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.PriorityQueue;

/**
 * SentencePiece-style tokenization as llama.cpp does it for {@code tokenizer.ggml.model = llama} (Llama
 * 1/2, Mistral, TinyLlama): a space prefix, spaces as {@code ▁}, then repeated merging of the adjacent
 * pair whose concatenation is the highest-scoring vocabulary entry (leftmost on ties), and byte fallback
 * through the {@code <0xNN>} tokens for whatever is left outside the vocabulary.
 */
final class SentencePieceTokenizer extends Tokenizer {
    private static final String SPACE = "\u2581";

    private final float[] scores;
    private final boolean addSpacePrefix;
    private final int unk;
    private final int[] byteTokens = new int[256];

    SentencePieceTokenizer(GgufMetadata meta) {
        super(meta, 1, 2, true);
        List<Number> s = meta.numbers("tokenizer.ggml.scores").orElse(List.of());
        this.scores = new float[tokens.size()];
        for (int i = 0; i < scores.length; i++) {
            scores[i] = i < s.size() ? s.get(i).floatValue() : 0f;
        }
        this.addSpacePrefix = meta.bool("tokenizer.ggml.add_space_prefix").orElse(true);
        this.unk = meta.integer("tokenizer.ggml.unknown_token_id")
                .map(Long::intValue)
                .orElse(0);
        for (int b = 0; b < 256; b++) {
            byteTokens[b] = id(String.format("<0x%02X>", b));
        }
    }

    private static final class Symbol {
        String text;
        int prev;
        int next;
        boolean gone;
    }

    private static final class Bigram {
        final int left;
        final int right;
        final float score;
        final int length;

        Bigram(int left, int right, float score, int length) {
            this.left = left;
            this.right = right;
            this.score = score;
            this.length = length;
        }
    }

    @Override
    void encodePlain(String text, List<Integer> out, boolean atStart) {
        if (text.isEmpty()) {
            return;
        }
        String s = (addSpacePrefix ? " " + text : text).replace(" ", SPACE);
        int n = s.codePointCount(0, s.length());
        Symbol[] sym = new Symbol[n];
        int ci = 0;
        for (int i = 0; i < s.length(); ) {
            int cp = s.codePointAt(i);
            int len = Character.charCount(cp);
            Symbol y = new Symbol();
            y.text = s.substring(i, i + len);
            y.prev = ci - 1;
            y.next = ci + 1 < n ? ci + 1 : -1;
            sym[ci++] = y;
            i += len;
        }
        PriorityQueue<Bigram> queue = new PriorityQueue<>(
                (a, b) -> a.score != b.score ? Float.compare(b.score, a.score) : Integer.compare(a.left, b.left));
        for (int i = 0; i + 1 < n; i++) {
            tryAdd(sym, i, i + 1, queue);
        }
        while (!queue.isEmpty()) {
            Bigram b = queue.poll();
            Symbol l = sym[b.left];
            Symbol r = sym[b.right];
            if (l.gone || r.gone || l.next != b.right || l.text.length() + r.text.length() != b.length) {
                continue;
            }
            l.text = l.text + r.text;
            r.gone = true;
            l.next = r.next;
            if (r.next >= 0) {
                sym[r.next].prev = b.left;
            }
            if (l.prev >= 0) {
                tryAdd(sym, l.prev, b.left, queue);
            }
            if (l.next >= 0) {
                tryAdd(sym, b.left, l.next, queue);
            }
        }
        for (int i = 0; i >= 0 && i < n; i = sym[i].next) {
            Integer id = ids.get(sym[i].text);
            if (id != null) {
                out.add(id);
                continue;
            }
            for (byte b : sym[i].text.getBytes(StandardCharsets.UTF_8)) {
                int t = byteTokens[b & 0xFF];
                out.add(t >= 0 ? t : unk);
            }
        }
    }

    private void tryAdd(Symbol[] sym, int left, int right, PriorityQueue<Bigram> queue) {
        String joined = sym[left].text + sym[right].text;
        Integer id = ids.get(joined);
        if (id != null) {
            queue.add(new Bigram(left, right, scores[id], joined.length()));
        }
    }

    @Override
    public byte[] bytes(int token) {
        if (token < 0 || token >= tokens.size() || types[token] == CONTROL) {
            return new byte[0];
        }
        String t = tokens.get(token);
        if (types[token] == BYTE && t.length() == 6 && t.startsWith("<0x") && t.endsWith(">")) {
            return new byte[] {(byte) Integer.parseInt(t.substring(3, 5), 16)};
        }
        return t.replace(SPACE, " ").getBytes(StandardCharsets.UTF_8);
    }

    @Override
    public String decode(int[] tokens) {
        String s = super.decode(tokens);
        return addSpacePrefix && s.startsWith(" ") ? s.substring(1) : s;
    }
}
