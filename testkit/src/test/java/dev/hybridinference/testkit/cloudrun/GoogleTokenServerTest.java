package dev.hybridinference.testkit.cloudrun;

import static dev.hybridinference.testkit.cloudrun.Calls.await;
import static dev.hybridinference.testkit.cloudrun.Calls.chat;
import static dev.hybridinference.testkit.cloudrun.Calls.chatCall;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.auth.oauth2.ComputeEngineCredentials;
import com.google.auth.oauth2.GoogleCredentials;
import com.google.auth.oauth2.IdToken;
import com.google.auth.oauth2.IdTokenCredentials;
import com.google.auth.oauth2.IdTokenProvider;
import com.google.auth.oauth2.ServiceAccountCredentials;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPairGenerator;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The fake Google token server seen through google-auth-library, as a Cloud Run client gets its ID tokens: from the
 * metadata server (found through {@code GCE_METADATA_HOST}, which the build sets for the test JVM with a port it
 * reserved) and from a service-account key.
 */
@Timeout(30)
class GoogleTokenServerTest {
    private static GoogleTokenServer google;
    private CloudRunEmulator run;

    @BeforeAll
    static void startOnTheMetadataPort() {
        Integer port = Integer.getInteger("gce.metadata.port");
        assertThat(port)
                .as("the build passes the reserved port as gce.metadata.port (run the tests through Maven)")
                .isNotNull();
        assertThat(System.getenv("GCE_METADATA_HOST")).isEqualTo("127.0.0.1:" + port);
        google = GoogleTokenServer.start(port);
        assertThat(google.hostPort()).isEqualTo("127.0.0.1:" + port);
    }

    @AfterAll
    static void stop() {
        google.close();
    }

    @BeforeEach
    void service() {
        google.tokenLifetime(Duration.ofHours(1));
        run = CloudRunEmulator.builder().requireIdToken(google).start();
    }

    @AfterEach
    void stopService() {
        run.close();
    }

    private static IdTokenCredentials fromMetadataServer(String audience) {
        return IdTokenCredentials.newBuilder()
                .setIdTokenProvider(ComputeEngineCredentials.create())
                .setTargetAudience(audience)
                .setOptions(List.of(IdTokenProvider.Option.FORMAT_FULL))
                .build();
    }

    private static ServiceAccountCredentials serviceAccount(String keyJson) throws IOException {
        return ServiceAccountCredentials.fromStream(new ByteArrayInputStream(keyJson.getBytes(StandardCharsets.UTF_8)));
    }

    private static JsonNode payload(String jwt) throws IOException {
        return Calls.MAPPER.readTree(Base64.getUrlDecoder().decode(jwt.split("\\.")[1]));
    }

    private static String bearer(Map<String, List<String>> metadata) {
        String authorization = metadata.get("Authorization").get(0);
        assertThat(authorization).startsWith("Bearer ");
        return authorization.substring("Bearer ".length());
    }

    @Test
    void computeEngineCredentialsGetAnIdTokenTheServiceAccepts() throws IOException {
        long issued = google.idTokensIssued();
        IdTokenCredentials credentials = fromMetadataServer(run.url());
        credentials.refresh();
        IdToken token = credentials.getIdToken();

        assertThat(chatCall(run.url(), chat("hi"), token.getTokenValue()).statusCode())
                .isEqualTo(200);
        assertThat(google.idTokensIssued()).isEqualTo(issued + 1);
        assertThat(google.audiencesRequested()).last().isEqualTo(run.url());
        JsonNode claims = payload(token.getTokenValue());
        assertThat(claims.path("iss").asText()).isEqualTo("https://accounts.google.com");
        assertThat(claims.path("aud").asText()).isEqualTo(run.url());
        assertThat(claims.path("email").asText()).isEqualTo(GoogleTokenServer.DEFAULT_ACCOUNT);
        assertThat(token.getExpirationTime().getTime() - System.currentTimeMillis())
                .isBetween(
                        Duration.ofMinutes(55).toMillis(),
                        Duration.ofMinutes(61).toMillis());
        JsonNode header = Calls.MAPPER.readTree(
                Base64.getUrlDecoder().decode(token.getTokenValue().split("\\.")[0]));
        assertThat(header.path("alg").asText()).isEqualTo("RS256");
    }

    @Test
    void serviceAccountCredentialsGetAnIdTokenTheServiceAccepts() throws IOException {
        String email = "invoker@emulated-project.iam.gserviceaccount.com";
        String keyJson = google.serviceAccountKeyJson(email);
        JsonNode key = Calls.readJson(keyJson);
        assertThat(key.path("type").asText()).isEqualTo("service_account");
        assertThat(key.path("token_uri").asText()).isEqualTo(google.tokenUri());
        assertThat(key.path("private_key").asText()).startsWith("-----BEGIN PRIVATE KEY-----\n");

        IdToken token = serviceAccount(keyJson).idTokenWithAudience(run.url(), List.of());
        assertThat(chatCall(run.url(), chat("hi"), token.getTokenValue()).statusCode())
                .isEqualTo(200);
        JsonNode claims = payload(token.getTokenValue());
        assertThat(claims.path("email").asText()).isEqualTo(email);
        assertThat(claims.path("sub").asText()).isEqualTo(key.path("client_id").asText());
        assertThat(claims.path("aud").asText()).isEqualTo(run.url());
    }

    @Test
    void aKeyTheServerDidNotMakeIsRefused() throws Exception {
        ObjectNode forged = (ObjectNode) Calls.readJson(google.serviceAccountKeyJson("someone@example.com"));
        KeyPairGenerator generator = KeyPairGenerator.getInstance("RSA");
        generator.initialize(2048);
        forged.put(
                "private_key",
                "-----BEGIN PRIVATE KEY-----\n"
                        + Base64.getMimeEncoder()
                                .encodeToString(
                                        generator.generateKeyPair().getPrivate().getEncoded())
                        + "\n-----END PRIVATE KEY-----\n");
        long issued = google.idTokensIssued();

        assertThatThrownBy(() -> serviceAccount(forged.toString()).idTokenWithAudience(run.url(), List.of()))
                .isInstanceOf(IOException.class)
                .hasMessageContaining("invalid_grant");
        assertThat(google.idTokensIssued()).isEqualTo(issued);
    }

    @Test
    void anExpiredTokenIsRefusedAndTheLibraryFetchesAnother() throws Exception {
        google.tokenLifetime(Duration.ofSeconds(2));
        IdTokenCredentials credentials = fromMetadataServer(run.url());
        URI uri = URI.create(run.url() + "/v1/chat/completions");
        long issued = google.idTokensIssued();

        String first = bearer(credentials.getRequestMetadata(uri));
        assertThat(chatCall(run.url(), chat("hi"), first).statusCode()).isEqualTo(200);
        await(
                "the first token to expire",
                Duration.ofSeconds(10),
                () -> chatCall(run.url(), chat("hi"), first).statusCode() == 403);

        String second = bearer(credentials.getRequestMetadata(uri));
        assertThat(second).isNotEqualTo(first);
        assertThat(google.idTokensIssued()).isGreaterThanOrEqualTo(issued + 2);
        assertThat(chatCall(run.url(), chat("hi"), second).statusCode()).isEqualTo(200);
    }

    @Test
    void theMetadataServerWantsItsFlavorHeader() {
        String base = "http://" + google.hostPort();
        String identity =
                "/computeMetadata/v1/instance/service-accounts/default/identity?audience=https%3A%2F%2Fa.example";
        HttpResponse<String> refused = Calls.get(base, identity);
        assertThat(refused.statusCode()).isEqualTo(403);

        HttpResponse<String> answered =
                Calls.send(HttpRequest.newBuilder(URI.create(base + identity)).header("Metadata-Flavor", "Google"));
        assertThat(answered.statusCode()).isEqualTo(200);
        assertThat(answered.headers().firstValue("metadata-flavor")).hasValue("Google");
        assertThat(answered.body().split("\\.")).hasSize(3);
        assertThat(google.audiencesRequested()).last().isEqualTo("https://a.example");

        HttpResponse<String> noAudience = Calls.send(HttpRequest.newBuilder(
                        URI.create(base + "/computeMetadata/v1/instance/service-accounts/default/identity"))
                .header("Metadata-Flavor", "Google"));
        assertThat(noAudience.statusCode()).isEqualTo(400);
        HttpResponse<String> ping = Calls.get(base, "/");
        assertThat(ping.statusCode()).isEqualTo(200);
        assertThat(ping.headers().firstValue("metadata-flavor")).hasValue("Google");
    }

    @Test
    void applicationDefaultCredentialsFindTheMetadataServer() throws IOException {
        assumeTrue(
                System.getenv("GOOGLE_APPLICATION_CREDENTIALS") == null,
                "application default credentials point at a key file");
        assumeFalse(
                Files.exists(Path.of(
                        System.getProperty("user.home"), ".config", "gcloud", "application_default_credentials.json")),
                "a gcloud login is present");
        GoogleCredentials credentials = GoogleCredentials.getApplicationDefault();
        assertThat(credentials).isInstanceOf(ComputeEngineCredentials.class);
        IdToken token = ((IdTokenProvider) credentials).idTokenWithAudience(run.url(), List.of());
        assertThat(chatCall(run.url(), chat("hi"), token.getTokenValue()).statusCode())
                .isEqualTo(200);
    }
}
