package dev.hybridinference.localgpu.internal;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.localgpu.GgufMetadata;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Tokenizers built from the fixtures' vocabularies (read in Java; no native code involved). */
class TokenizerTest {
    static Tokenizer tokenizer(String model) throws IOException {
        return Tokenizer.of(GgufMetadata.read(LlamaCppOracleTest.resource(model + ".gguf")));
    }

    static List<String> pieces(Tokenizer t, int[] ids) {
        List<String> out = new ArrayList<>();
        for (int id : ids) {
            out.add(t.tokens.get(id));
        }
        return out;
    }

    @Test
    void sentencePieceMergesByScoreAndAddsTheSpacePrefixAndBos() throws IOException {
        Tokenizer t = tokenizer("tiny-f32");
        assertThat(t).isInstanceOf(SentencePieceTokenizer.class);
        // "▁the" forms through ▁+t, h+e, ▁t+he; "▁Hello" is in the vocabulary but cannot form, since no
        // entry holds "H": SentencePiece only reaches pieces through merges of vocabulary entries.
        assertThat(pieces(t, t.encode("the", false, false))).containsExactly("\u2581the");
        int[] ids = t.encode("Hello world", true, false);
        assertThat(ids[0]).isEqualTo(1);
        assertThat(pieces(t, ids))
                .containsExactly("<s>", "\u2581", "<0x48>", "e", "ll", "o", "\u2581", "<0x77>", "o", "r", "l", "d");
        assertThat(t.decode(ids)).isEqualTo("Hello world");
    }

    @Test
    void sentencePieceFallsBackToBytesAndRoundTripsUnicode() throws IOException {
        Tokenizer t = tokenizer("tiny-f32");
        assertThat(pieces(t, t.encode("é", false, false))).containsExactly("\u2581", "<0xC3>", "<0xA9>");
        for (String s :
                new String[] {"héllo wörld", "日本語 テキスト", "emoji \uD83D\uDE80 ok", "tabs\tand\nnewlines", "  two spaces"
                }) {
            assertThat(t.decode(t.encode(s, true, false))).as(s).isEqualTo(s);
        }
    }

    @Test
    void byteLevelBpeAppliesMergesByRankAndRoundTripsUnicode() throws IOException {
        Tokenizer t = tokenizer("tiny-qwen2-f32");
        assertThat(t).isInstanceOf(BpeTokenizer.class);
        assertThat(pieces(t, t.encode("in the hall", false, false)))
                .containsExactly("in", "\u0120the", "\u0120", "h", "a", "ll");
        for (String s : new String[] {
            "héllo wörld", "日本語 テキスト", "emoji \uD83D\uDE80 ok", "line\r\nbreaks  and   spaces", "1234567"
        }) {
            assertThat(t.decode(t.encode(s, false, false))).as(s).isEqualTo(s);
        }
        assertThat(t.addsBos()).isFalse();
    }

    @Test
    void specialTokensAreMatchedOnlyWhenAsked() throws IOException {
        Tokenizer t = tokenizer("tiny-qwen2-f32");
        int imStart = t.id("<|im_start|>");
        assertThat(imStart).isPositive();
        int[] withSpecial = t.encode("<|im_start|>user\nhi<|im_end|>", false, true);
        assertThat(withSpecial[0]).isEqualTo(imStart);
        assertThat(t.isEnd(t.id("<|im_end|>"))).isTrue();
        int[] plain = t.encode("<|im_start|>", false, false);
        assertThat(plain).doesNotContain(imStart);
        assertThat(t.decode(plain)).isEqualTo("<|im_start|>");
    }

    @Test
    void theStreamDecoderNeverSplitsACharacter() throws IOException {
        Tokenizer t = tokenizer("tiny-f32");
        int[] ids = t.encode("é\uD83D\uDE80", false, false);
        Tokenizer.StreamDecoder d = t.streamDecoder();
        StringBuilder sb = new StringBuilder();
        List<String> pieces = new ArrayList<>();
        for (int id : ids) {
            String p = d.next(id);
            pieces.add(p);
            sb.append(p);
        }
        sb.append(d.flush());
        assertThat(sb.toString()).isEqualTo(" é\uD83D\uDE80");
        for (String p : pieces) {
            assertThat(p.chars().noneMatch(c -> c == 0xFFFD)).as(p).isTrue();
        }
    }

    @Test
    void chatTemplatesAreRecognisedFromTheirMarkers() {
        assertThat(ChatTemplate.detect("{% for m in messages %}<|im_start|>{{ m.role }}"))
                .isEqualTo(ChatTemplate.CHATML);
        assertThat(ChatTemplate.detect("<|start_header_id|>")).isEqualTo(ChatTemplate.LLAMA3);
        assertThat(ChatTemplate.detect("[INST] {{ m }} [/INST]")).isEqualTo(ChatTemplate.LLAMA2);
        assertThat(ChatTemplate.detect("<|user|>\n{{ m }}<|end|>")).isEqualTo(ChatTemplate.PHI3);
        assertThat(ChatTemplate.detect("<|user|>\n{{ m }}</s>")).isEqualTo(ChatTemplate.ZEPHYR);
        assertThat(ChatTemplate.detect(null)).isEqualTo(ChatTemplate.PLAIN);
        var msgs = List.of(
                dev.hybridinference.core.Message.system("Be brief."), dev.hybridinference.core.Message.user("Hi"));
        assertThat(ChatTemplate.CHATML.apply(msgs))
                .isEqualTo(
                        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        assertThat(ChatTemplate.LLAMA2.apply(msgs)).isEqualTo("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
    }
}
