package dev.hybridinference.sagemaker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.ResponseFormat;
import dev.hybridinference.core.ToolDefinition;
import dev.hybridinference.core.http.ResponseLimits;
import dev.hybridinference.core.spi.ProviderResult;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The built-in payload formats: what they send, and what they read from whole answers and from parts split anywhere. */
class PayloadCodecTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final PayloadCodec.Context CTX =
            new PayloadCodec.Context("sm", "sagemaker:us-east-1/e", "m", 40, ResponseLimits.DEFAULTS);

    private static JsonNode json(byte[] body) throws Exception {
        return JSON.readTree(body);
    }

    /** Feeds {@code body} in parts of {@code size} bytes; returns the chunks' texts, then the result. */
    private static ProviderResult streamed(PayloadCodec codec, String body, int size, List<String> texts) {
        PayloadCodec.StreamDecoder d = codec.streamDecoder(CTX);
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < bytes.length; i += size) {
            byte[] part = java.util.Arrays.copyOfRange(bytes, i, Math.min(bytes.length, i + size));
            ChatChunk c = d.feed(part);
            if (c != null) {
                texts.add(c.text());
            }
        }
        ChatChunk last = d.finish();
        if (last != null) {
            texts.add(last.text());
        }
        return d.result();
    }

    @Test
    void theMessagesFormatSendsAnOpenAiBodyAndReadsItsUsage() throws Exception {
        JsonNode body = json(PayloadCodec.messages()
                .encode(ChatRequest.builder().user("hi").maxTokens(5).build(), "served", true));
        assertThat(body.path("messages").path(0).path("content").asText()).isEqualTo("hi");
        assertThat(body.path("model").asText()).isEqualTo("served");
        assertThat(body.path("stream").asBoolean()).isTrue();

        ProviderResult r = PayloadCodec.messages()
                .decode(
                        ("{\"id\":\"x\",\"object\":\"chat.completion\",\"model\":\"served\",\"choices\":[{\"index\":0,"
                                        + "\"message\":{\"role\":\"assistant\",\"content\":\"Hello there\"},\"finish_reason\":\"stop\"}],"
                                        + "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9}}")
                                .getBytes(StandardCharsets.UTF_8),
                        CTX);
        assertThat(r.text()).isEqualTo("Hello there");
        assertThat(r.usage().inputTokens()).isEqualTo(7);
        assertThat(r.usage().outputTokens()).isEqualTo(2);
        assertThat(r.usage().estimated()).isFalse();
    }

    @Test
    void aMessagesAnswerWithoutUsageIsEstimatedAndMarked() {
        ProviderResult r = PayloadCodec.messages()
                .decode(
                        ("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"abcdefgh\"},\"finish_reason\":\"stop\"}]}")
                                .getBytes(StandardCharsets.UTF_8),
                        CTX);
        assertThat(r.usage().estimated()).isTrue();
        assertThat(r.usage().inputTokens()).isEqualTo(10); // 40 characters
        assertThat(r.usage().outputTokens()).isEqualTo(2);
    }

    @Test
    void sseAndJsonLinesStreamsGiveTheSameAnswerHoweverThePartsCutThem() {
        String sse = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
                + "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo wörld\"}}]}\n\n"
                + "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
                + "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n"
                + "data: [DONE]\n\n";
        String lines = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n"
                + "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo wörld\"}}]}\n"
                + "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}"; // no newline at the end
        for (int size : new int[] {1, 3, 7, 1000}) {
            List<String> texts = new ArrayList<>();
            ProviderResult r = streamed(PayloadCodec.messages(), sse, size, texts);
            assertThat(String.join("", texts)).isEqualTo("Hello wörld");
            assertThat(r.text()).isEqualTo("Hello wörld");
            assertThat(r.usage().outputTokens()).isEqualTo(2);
            assertThat(r.usage().estimated()).isFalse();
            assertThat(r.finishReason()).isEqualTo(FinishReason.STOP);

            texts.clear();
            ProviderResult l = streamed(PayloadCodec.messages(), lines, size, texts);
            assertThat(String.join("", texts)).isEqualTo("Hello wörld");
            assertThat(l.finishReason()).isEqualTo(FinishReason.STOP);
            assertThat(l.usage().estimated()).as("LMI sends no usage").isTrue();
            assertThat(l.usage().outputTokens()).isEqualTo(2);
        }
    }

    @Test
    void theTgiFormatRendersThePromptAndAsksForDetails() throws Exception {
        ChatRequest req = ChatRequest.builder()
                .system("be brief")
                .user("hi")
                .maxTokens(12)
                .temperature(0.5)
                .topP(1.0)
                .stop("\n")
                .seed(7)
                .build();
        JsonNode tgi = json(PayloadCodec.tgi(PromptTemplate.CHATML).encode(req, "", false));
        assertThat(tgi.path("inputs").asText())
                .isEqualTo(
                        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
        JsonNode p = tgi.path("parameters");
        assertThat(p.path("max_new_tokens").asInt()).isEqualTo(12);
        assertThat(p.path("temperature").asDouble()).isEqualTo(0.5);
        assertThat(p.path("do_sample").asBoolean()).isTrue();
        assertThat(p.has("top_p")).as("TGI refuses top_p = 1").isFalse();
        assertThat(p.path("stop").path(0).asText()).isEqualTo("\n");
        assertThat(p.path("seed").asLong()).isEqualTo(7);
        assertThat(p.path("details").asBoolean()).isTrue();
        assertThat(tgi.path("stream").asBoolean()).isFalse();

        JsonNode lmi = json(PayloadCodec.lmi(PromptTemplate.LLAMA3).encode(req, "", true));
        assertThat(lmi.path("parameters").path("stop_sequences").path(0).asText())
                .isEqualTo("\n");
        assertThat(lmi.path("inputs").asText()).startsWith("<|begin_of_text|><|start_header_id|>system");
        assertThat(lmi.path("stream").asBoolean()).isTrue();
    }

    @Test
    void jsonOutputTravelsAsTgiGrammarAndIsRefusedByLmiAsAreTools() throws Exception {
        ChatRequest json = ChatRequest.builder()
                .user("give json")
                .responseFormat(ResponseFormat.jsonSchema(
                        "p", "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}"))
                .build();
        JsonNode g = json(PayloadCodec.tgi(PromptTemplate.PLAIN).encode(json, "", false))
                .path("parameters")
                .path("grammar");
        assertThat(g.path("type").asText()).isEqualTo("json");
        assertThat(g.path("value").path("properties").path("a").path("type").asText())
                .isEqualTo("integer");
        assertThatThrownBy(() -> PayloadCodec.lmi(PromptTemplate.PLAIN).encode(json, "", false))
                .isInstanceOf(InvalidRequestException.class)
                .hasMessageContaining("payload: messages");
        ChatRequest tools = ChatRequest.builder()
                .user("call")
                .addTool(new ToolDefinition("f", "does f", "{\"type\":\"object\"}"))
                .build();
        assertThatThrownBy(() -> PayloadCodec.tgi(PromptTemplate.PLAIN).encode(tools, "", false))
                .isInstanceOf(InvalidRequestException.class);
        assertThat(PayloadCodec.tgi(PromptTemplate.PLAIN).capabilities().tools())
                .isFalse();
        assertThat(PayloadCodec.tgi(PromptTemplate.PLAIN).capabilities().jsonSchema())
                .isTrue();
        assertThat(PayloadCodec.lmi(PromptTemplate.PLAIN).capabilities().jsonSchema())
                .isFalse();
    }

    @Test
    void generateAnswersOfTgiAndLmiAreRead() {
        ProviderResult tgi = PayloadCodec.tgi(PromptTemplate.CHATML)
                .decode(
                        "[{\"generated_text\":\"four words of text\",\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":4}}]"
                                .getBytes(StandardCharsets.UTF_8),
                        CTX);
        assertThat(tgi.text()).isEqualTo("four words of text");
        assertThat(tgi.finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat(tgi.usage().outputTokens()).isEqualTo(4);
        assertThat(tgi.usage().estimated())
                .as("the prompt's tokens are estimated")
                .isTrue();
        ProviderResult lmi = PayloadCodec.lmi(PromptTemplate.CHATML)
                .decode("{\"generated_text\":\"ok\"}".getBytes(StandardCharsets.UTF_8), CTX);
        assertThat(lmi.text()).isEqualTo("ok");
        assertThatThrownBy(() -> PayloadCodec.tgi(PromptTemplate.CHATML)
                        .decode("{\"nope\":1}".getBytes(StandardCharsets.UTF_8), CTX))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("generated_text");
    }

    @Test
    void tgiSseAndLmiJsonLinesTokenStreamsAreCountedAndSplitAnywhere() {
        String tgi =
                "data:{\"index\":1,\"token\":{\"id\":5,\"text\":\"Hi\",\"logprob\":-0.1,\"special\":false},\"generated_text\":null,\"details\":null}\n\n"
                        + "data:{\"index\":2,\"token\":{\"id\":6,\"text\":\" thére\",\"logprob\":-0.1,\"special\":false},\"generated_text\":null,\"details\":null}\n\n"
                        + "data:{\"index\":3,\"token\":{\"id\":2,\"text\":\"</s>\",\"logprob\":-0.1,\"special\":true},\"generated_text\":\"Hi thére\",\"details\":{\"finish_reason\":\"eos_token\",\"generated_tokens\":3}}\n\n";
        String lmi = "{\"token\":{\"id\":5,\"text\":\"Hi\",\"log_prob\":-0.1}}\n"
                + "{\"token\":{\"id\":6,\"text\":\" thére\",\"log_prob\":-0.1},\"generated_text\":\"Hi thére\",\"details\":{\"finish_reason\":\"length\"}}\n";
        for (int size : new int[] {1, 5, 4096}) {
            List<String> texts = new ArrayList<>();
            ProviderResult r = streamed(PayloadCodec.tgi(PromptTemplate.CHATML), tgi, size, texts);
            assertThat(String.join("", texts)).isEqualTo("Hi thére");
            assertThat(r.finishReason()).isEqualTo(FinishReason.STOP);
            assertThat(r.usage().outputTokens()).isEqualTo(3);
            texts.clear();
            ProviderResult l = streamed(PayloadCodec.lmi(PromptTemplate.CHATML), lmi, size, texts);
            assertThat(String.join("", texts)).isEqualTo("Hi thére");
            assertThat(l.finishReason()).isEqualTo(FinishReason.LENGTH);
            assertThat(l.usage().outputTokens())
                    .as("counted: one per token line")
                    .isEqualTo(2);
        }
    }

    @Test
    void anLmiErrorLineFailsTheStreamAsUnavailable() {
        String lmi = "{\"token\":{\"id\":5,\"text\":\"Hi\",\"log_prob\":-0.1}}\n"
                + "{\"token\":{\"id\":-1,\"text\":\"\",\"log_prob\":-1},\"generated_text\":\"Hi\",\"details\":{\"finish_reason\":\"error\"}}\n";
        assertThatThrownBy(() -> streamed(PayloadCodec.lmi(PromptTemplate.CHATML), lmi, 8, new ArrayList<>()))
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("mid-stream");
    }

    @Test
    void promptTemplatesRenderEveryRole() {
        List<dev.hybridinference.core.Message> msgs = List.of(
                dev.hybridinference.core.Message.system("S"),
                dev.hybridinference.core.Message.user("U1"),
                dev.hybridinference.core.Message.assistant("A1"),
                dev.hybridinference.core.Message.user("U2"));
        assertThat(PromptTemplate.MISTRAL.render(msgs)).isEqualTo("<s>[INST] S\n\nU1 [/INST] A1</s>[INST] U2 [/INST]");
        assertThat(PromptTemplate.PLAIN.render(msgs))
                .isEqualTo("System: S\nUser: U1\nAssistant: A1\nUser: U2\nAssistant:");
        assertThat(PromptTemplate.LLAMA3.render(msgs))
                .endsWith(
                        "<|start_header_id|>user<|end_header_id|>\n\nU2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        assertThatThrownBy(() -> PromptTemplate.named("alpaca"))
                .hasMessageContaining("chatml, llama3, mistral or plain");
    }
}
