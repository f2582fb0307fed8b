"""Adapters that let LangChain and LlamaIndex code use llmlab in process (optional extras).

``llmlab.rag.interop.langchain``: a retriever, embeddings and a chat model for LangChain;
``llmlab.rag.interop.llamaindex``: the same for LlamaIndex. Each module imports its
framework when imported, and says how to install it when it is missing.
"""
