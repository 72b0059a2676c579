package dev.hybridinference.sagemaker;

import static org.assertj.core.api.Assertions.assertThat;

import dev.hybridinference.core.ClientInfo;
import dev.hybridinference.core.ConfigurationException;
import dev.hybridinference.core.DeploymentKind;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.Pricing;
import java.math.BigDecimal;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The {@code sagemaker} provider type through configuration, and what a bad section is told. */
class SageMakerConfigTest {
    private static final String BASE =
            "providers:\n  sm:\n    type: sagemaker\n    endpointName: e1\n    region: eu-west-1\n";

    private static String error(String yaml) {
        try (InferenceClient c = InferenceClients.fromConfig(yaml)) {
            throw new AssertionError("expected a configuration error, built " + c.info());
        } catch (ConfigurationException e) {
            return e.getMessage();
        }
    }

    @Test
    void aMinimalSectionBuildsARealTimeEndpointOnTheMessagesFormat() {
        try (InferenceClient c = InferenceClients.fromConfig(BASE)) {
            SageMakerClient sm = c.unwrap(SageMakerClient.class).orElseThrow();
            assertThat(sm.endpointName()).isEqualTo("e1");
            assertThat(sm.deployment()).isEqualTo(SageMakerClient.Deployment.REAL_TIME);
            assertThat(c.info().deploymentKind()).isEqualTo(DeploymentKind.SERVER);
            assertThat(c.info().coldStart()).isEqualTo(ClientInfo.ColdStartProfile.NONE);
            assertThat(c.info().pricing()).isEqualTo(new Pricing.PerInstanceHour(BigDecimal.ZERO, 1));
            assertThat(c.info().capabilities().tools()).isTrue();
        }
    }

    @Test
    void deploymentsDecideKindAndColdStartPrediction() {
        try (InferenceClient c =
                InferenceClients.fromConfig(BASE + "    deployment: serverless\n    idleTimeout: 10m\n")) {
            assertThat(c.info().deploymentKind()).isEqualTo(DeploymentKind.SERVERLESS);
            assertThat(c.info().coldStart())
                    .isEqualTo(ClientInfo.ColdStartProfile.scalesToZero(Duration.ofMinutes(10), 0));
            assertThat(c.info().coldStart().predictsColdAfter()).contains(Duration.ofMinutes(10));
        }
        try (InferenceClient c = InferenceClients.fromConfig(BASE
                + "    deployment: inference-component\n    inferenceComponent: ic\n"
                + "    pricing: {type: per-instance-second, perHour: 1.212, minInstances: 1, scaleInDelay: 20m}\n")) {
            assertThat(c.info().coldStart().canColdStart()).isTrue();
            assertThat(c.info().coldStart().minInstances())
                    .as("from the pricing's minimum")
                    .isEqualTo(1);
            assertThat(c.info().coldStart().idleTimeout()).isEqualTo(Duration.ofMinutes(20));
            assertThat(c.info().coldStart().predictsColdAfter()).isEmpty();
        }
    }

    @Test
    void theGenerateFormatsSayTheyCannotCarryTools() {
        try (InferenceClient c = InferenceClients.fromConfig(BASE + "    payload: tgi\n    promptTemplate: llama3\n")) {
            assertThat(c.info().capabilities().tools()).isFalse();
            assertThat(c.info().capabilities().jsonSchema()).isTrue();
        }
        try (InferenceClient c = InferenceClients.fromConfig(BASE + "    payload: lmi\n")) {
            assertThat(c.info().capabilities().jsonSchema()).isFalse();
        }
    }

    @Test
    void aCustomCodecIsNamedByClass() {
        try (InferenceClient c =
                InferenceClients.fromConfig(BASE + "    payload: " + UpperCaseCodec.class.getName() + "\n")) {
            assertThat(c.info().capabilities().tools()).isFalse();
        }
        assertThat(error(BASE + "    payload: com.example.Missing\n"))
                .startsWith("providers.sm.payload:")
                .contains("PayloadCodec class");
        assertThat(error(BASE + "    payload: java.lang.String\n")).contains("does not implement");
    }

    @Test
    void badSectionsNameTheKeyAndWhatWasExpected() {
        assertThat(error("providers:\n  sm: {type: sagemaker, region: us-east-1}\n"))
                .startsWith("providers.sm.endpointName:");
        assertThat(error("providers:\n  sm: {type: sagemaker, endpointName: e}\n"))
                .startsWith("providers.sm.region:");
        assertThat(error(BASE + "    deployment: lambda\n"))
                .startsWith("providers.sm.deployment:")
                .contains("real-time, serverless or inference-component");
        assertThat(error(BASE + "    endpointUrl: http://x\n")).contains("endpointUrl");
        assertThat(error(BASE + "    endpointOverride: ftp://x\n")).startsWith("providers.sm.endpointOverride:");
        assertThat(error(BASE + "    promptTemplate: chatml\n")).contains("only with payload tgi or lmi");
        assertThat(error(BASE + "    payload: tgi\n    promptTemplate: alpaca\n"))
                .contains("chatml, llama3, mistral or plain");
        assertThat(error(BASE + "    customAttributes: \"" + "x".repeat(1025) + "\"\n"))
                .contains("1024");
        assertThat(error(BASE + "    credentials: {profile: p, accessKeyId: a}\n"))
                .contains("not both");
        assertThat(error(BASE + "    credentials: {accessKeyId: a}\n")).contains("secretAccessKey");
        assertThat(error(BASE + "    maxConnections: 0\n")).startsWith("providers.sm.maxConnections:");
    }

    @Test
    void credentialsTakeTheStringFormAndBothMappings() {
        // `credentials: default` is a single value, not a mapping: it selects the SDK's default chain.
        try (InferenceClient c = InferenceClients.fromConfig(BASE + "    credentials: default\n")) {
            assertThat(c.unwrap(SageMakerClient.class)).isPresent();
        }
        try (InferenceClient c = InferenceClients.fromConfig(BASE + "    credentials: {profile: dev}\n")) {
            assertThat(c.unwrap(SageMakerClient.class)).isPresent();
        }
        try (InferenceClient c = InferenceClients.fromConfig(
                BASE + "    credentials: {accessKeyId: AKID, secretAccessKey: s3cr3t-v4lue-7z}\n")) {
            assertThat(c.unwrap(SageMakerClient.class)).isPresent();
        }
        assertThat(error(BASE + "    credentials: default\n    deployment: lambda\n"))
                .as("the word default is a mode, not a secret: later messages keep it")
                .contains("real-time, serverless or inference-component")
                .doesNotContain("REDACTED");
        String other = error(BASE + "    credentials: instance-role\n");
        assertThat(other)
                .startsWith("providers.sm.credentials:")
                .contains("default, {profile: name} or {accessKeyId, secretAccessKey, sessionToken}")
                .doesNotContain("expected a mapping")
                .as("the value of a secret-looking key is never quoted")
                .doesNotContain("instance-role");
        assertThat(error(BASE + "    credentials: [default]\n"))
                .startsWith("providers.sm.credentials:")
                .contains("single value");
    }

    @Test
    void aBlankEndpointOverrideMeansTheRegionalEndpoint() {
        try (InferenceClient c = InferenceClients.loader()
                .env(java.util.Map.of("SAGEMAKER_ENDPOINT_URL", ""))
                .load(BASE + "    endpointOverride: ${SAGEMAKER_ENDPOINT_URL:-}\n")) {
            assertThat(c.unwrap(SageMakerClient.class)).isPresent();
        }
    }

    @Test
    void aStaticSecretKeyIsNeverEchoed() {
        String msg = error(BASE + "    credentials: {accessKeyId: AKID, secretAccessKey: s3cr3t-v4lue-9x, bogus: 1}\n");
        assertThat(msg).doesNotContain("s3cr3t-v4lue-9x");
        String msg2 = error(BASE + "    credentials: {accessKeyId: AKID, secretAccessKey: [s3cr3t-v4lue-9y]}\n");
        assertThat(msg2).doesNotContain("s3cr3t-v4lue-9y");
    }

    /** A custom container's codec, for the configuration test: upper-cases what the messages format reads. */
    public static final class UpperCaseCodec implements PayloadCodec {
        /** Used by the factory. */
        public UpperCaseCodec() {}

        @Override
        public ClientInfo.Capabilities capabilities() {
            return new ClientInfo.Capabilities(false, false, false, true, 0);
        }

        @Override
        public byte[] encode(dev.hybridinference.core.ChatRequest request, String model, boolean stream) {
            return PayloadCodec.messages().encode(request, model, stream);
        }

        @Override
        public dev.hybridinference.core.spi.ProviderResult decode(byte[] body, Context context) {
            dev.hybridinference.core.spi.ProviderResult r =
                    PayloadCodec.messages().decode(body, context);
            return r.toBuilder()
                    .text(r.text().toUpperCase(java.util.Locale.ROOT))
                    .build();
        }

        @Override
        public StreamDecoder streamDecoder(Context context) {
            return PayloadCodec.messages().streamDecoder(context);
        }
    }
}
