# scoring fragment
