/** Models on Azure AI Foundry and Azure OpenAI behind {@link dev.hybridinference.core.InferenceClient}. */
package dev.hybridinference.azure;
