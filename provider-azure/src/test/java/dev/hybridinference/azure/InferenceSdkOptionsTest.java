package dev.hybridinference.azure;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.azure.ai.inference.models.ChatCompletionsOptions;
import com.azure.json.JsonProviders;
import com.azure.json.JsonReader;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.Message;
import dev.hybridinference.core.ResponseFormat;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.ToolDefinition;
import dev.hybridinference.core.http.OpenAiCodec;
import java.io.IOException;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The SDK route's options, built from the request's fields, are what the SDK reads from the core codec's JSON for
 * the same request (the way they were built before): every field, message and tool the same once written.
 */
class InferenceSdkOptionsTest {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final String WEATHER =
            "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}," + " \"required\":[\"city\"]}";

    static List<ChatRequest> requests() {
        return List.of(
                ChatRequest.of("hi"),
                ChatRequest.builder()
                        .model("other-deployment")
                        .system("be brief")
                        .user("what is the weather in Oslo? \"quoted\" \u00e6\u00f8\u00e5 \n new line")
                        .addMessage(Message.assistant(
                                "", List.of(new ToolCall("call_1", "get_weather", "{\"city\":\"Oslo\"}"))))
                        .addMessage(Message.tool("call_1", "{\"temp\":3}"))
                        .addMessage(Message.assistant("It is 3 degrees."))
                        .addMessage(Message.assistant(
                                "Checking twice.", List.of(new ToolCall("call_2", "get_weather", "{}"))))
                        .user("thanks")
                        .temperature(0.25)
                        .topP(0.9)
                        .topK(40)
                        .maxTokens(128)
                        .stop("END", "\n\n")
                        .seed(42)
                        .addTool(new ToolDefinition("get_weather", "the weather", WEATHER))
                        .addTool(new ToolDefinition("no_args", "", "{}"))
                        .responseFormat(ResponseFormat.JSON_OBJECT)
                        .build(),
                ChatRequest.builder()
                        .user("a JSON answer")
                        .responseFormat(ResponseFormat.jsonSchema(
                                "answer",
                                "{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\",\"minimum\":0}},"
                                        + "\"required\":[\"n\"],\"additionalProperties\":false}"))
                        .build(),
                ChatRequest.builder()
                        .user("text please")
                        .responseFormat(ResponseFormat.TEXT)
                        .build());
    }

    @ParameterizedTest
    @MethodSource("requests")
    void theOptionsWriteWhatTheCodecsJsonReadsBackAs(ChatRequest request) throws IOException {
        String model = request.model().orElse("llama-8b");
        byte[] codec = OpenAiCodec.encodeRequest(request, model, false, OpenAiCodec.Dialect.OPENAI);
        ChatCompletionsOptions viaJson;
        try (JsonReader reader = JsonProviders.createReader(codec)) {
            viaJson = ChatCompletionsOptions.fromJson(reader);
        }
        JsonNode expected = MAPPER.readTree(viaJson.toJsonString());
        JsonNode built =
                MAPPER.readTree(InferenceSdkRoute.options(request, model).toJsonString());
        assertThat(built).isEqualTo(expected);
        // And the fields the SDK models are all there: nothing the codec writes is lost but top_k (not modelled).
        JsonNode sent = MAPPER.readTree(codec);
        sent.fieldNames().forEachRemaining(f -> assertThat(built.has(f)).as(f).isTrue());
    }

    @ParameterizedTest
    @MethodSource("requests")
    void noModelMeansNoModelField(ChatRequest request) throws IOException {
        JsonNode built =
                MAPPER.readTree(InferenceSdkRoute.options(request, null).toJsonString());
        assertThat(built.has("model")).isFalse();
        assertThat(built.path("messages").size()).isEqualTo(request.messages().size());
    }

    @org.junit.jupiter.api.Test
    void toolParametersAndSchemasThatAreNotJsonAreRefusedNamingWhich() {
        assertThatThrownBy(() -> InferenceSdkRoute.options(
                        ChatRequest.builder()
                                .user("x")
                                .addTool(new ToolDefinition("broken", "", "{\"type\":"))
                                .build(),
                        "m"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("tool broken parameters");
        assertThatThrownBy(() -> InferenceSdkRoute.options(
                        ChatRequest.builder()
                                .user("x")
                                .responseFormat(ResponseFormat.jsonSchema("s", "[1, 2]"))
                                .build(),
                        "m"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("response format schema");
    }
}
