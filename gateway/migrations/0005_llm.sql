-- 0005_llm.sql: LLM calls (written by usage.c).
CREATE TABLE llm_placeholder (id INTEGER);
